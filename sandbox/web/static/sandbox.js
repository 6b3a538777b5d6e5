// flexcord sandbox page: plays a Discord member against the Discord emulator
// (/_emu/discord/...) and a Flex agent against the Twilio emulator
// (/_emu/twilio/...). Plain JavaScript, no build step, no dependencies.
'use strict';

(() => {
  const DISCORD = '/_emu/discord';
  const TWILIO = '/_emu/twilio';

  // The Twilio fault behind the "Twilio 5xx" switch: every message flexcord
  // posts into a Flex conversation (the member's side of the chat) fails.
  const TWILIO_FAULT = {
    host: 'conversations.twilio.com',
    method: 'POST',
    path: '/v1/Conversations/*/Messages',
    status: 503,
    count: -1,
    message: 'Service Unavailable (injected by the sandbox page)',
  };

  // Case ids as flexcord formats them: "C-" and six characters without 0/O/1/I/L.
  const CASE_ID = /\bC-[2-9A-HJKMNP-Z]{6}\b/;

  const FLAG_CROSSPOSTED = 1 << 0;
  const FLAG_EPHEMERAL = 1 << 6;
  const FLAG_LOADING = 1 << 7;

  const DISCORD_EVENTS = [
    'message_create', 'message_update', 'message_delete', 'interaction_create', 'interaction_response',
    'interaction_failed', 'modal', 'member_update', 'commands_update',
  ];
  const TWILIO_EVENTS = ['task.created', 'task.updated', 'message.added', 'conversation.updated'];

  const state = {
    config: {},
    guildID: '',
    channels: { support: '', bug: '', feature: '' },
    members: [],
    memberID: '',
    bot: null,
    // users maps Discord user ids to display names, for mentions.
    users: new Map(),
    // tab is the server channel shown above the direct messages.
    tab: '',
    // unread counts the messages that arrived in channels not shown.
    unread: new Map(),
    // view is what the Discord side shows: 'dms' (the support channel and
    // the direct messages) or 'announcements'.
    view: 'dms',
    // announcementsUnread counts posts that arrived while another view was shown.
    announcementsUnread: 0,
    tasks: [],
    selectedTask: '',
    openedModals: new Set(),
    failedInteractions: new Set(),
    modal: null,
    twilioFaults: [],
    // pending are the files picked in each composer, not sent yet.
    pending: { member: [], agent: [] },
  };

  const $ = (id) => document.getElementById(id);

  // h builds an element: h('a', {href, class, 'data-testid': ..., onclick}, ...children).
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k in el && typeof v !== 'string') el[k] = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    append(el, children);
    return el;
  }

  function append(el, children) {
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  // OfflineError is a request that did not reach flexcord at all; the
  // banner says so, so callers need not.
  class OfflineError extends Error {}

  // api calls a control endpoint and returns its decoded JSON (or null).
  // body is sent as JSON, as a form (FormData) or as a file (Blob).
  async function api(method, path, body) {
    const init = { method, headers: {} };
    if (body instanceof FormData) {
      init.body = body;
    } else if (body instanceof Blob) {
      init.headers['Content-Type'] = body.type || 'application/octet-stream';
      init.body = body;
    } else if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    let text;
    try {
      res = await fetch(path, init);
      text = await res.text();
    } catch {
      reachable('requests', false);
      throw new OfflineError(`${method} ${path}: can't reach flexcord`);
    }
    reachable('requests', true);
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch { data = null; }
    }
    if (!res.ok) {
      const why = (data && data.error) || text.trim() || res.statusText;
      throw new Error(`${method} ${path}: ${res.status} ${why}`);
    }
    return data;
  }

  function toast(message, kind) {
    const el = h('div', { class: 'toast' + (kind ? ' ' + kind : ''), 'data-testid': 'toast' }, message);
    $('toasts').append(el);
    setTimeout(() => el.remove(), kind === 'error' ? 9000 : 5000);
  }

  function fail(what) {
    return (err) => {
      if (err instanceof OfflineError) return; // the banner says it
      console.error(what, err);
      toast(`${what}: ${err.message}`, 'error');
    };
  }

  // busy marks a control as working while promise runs.
  async function busy(el, promise) {
    el.setAttribute('aria-busy', 'true');
    el.disabled = true;
    try {
      return await promise;
    } finally {
      el.removeAttribute('aria-busy');
      el.disabled = false;
    }
  }

  // coalesce returns a function that runs fn, never twice at once; calls
  // made while it runs make it run once more afterwards.
  function coalesce(fn) {
    let running = false;
    let again = false;
    return async function run() {
      if (running) {
        again = true;
        return;
      }
      running = true;
      try {
        do {
          again = false;
          try {
            await fn();
          } catch (err) {
            if (!(err instanceof OfflineError)) console.error(err);
          }
        } while (again);
      } finally {
        running = false;
      }
    };
  }

  // The banner: shown while the page cannot reach flexcord (a request
  // failed to connect, or an event stream is down), cleared once both event
  // streams are live and a request went through again. While it shows, the
  // page probes the server every few seconds.
  const reach = { requests: true, discord: true, twilio: true };
  let probeTimer = 0;
  const resyncs = [];

  function reachable(what, ok) {
    if (reach[what] === ok) return;
    reach[what] = ok;
    const down = Object.values(reach).some((v) => !v);
    $('offline-banner').hidden = !down;
    document.body.dataset.offline = String(down);
    if (down && !probeTimer) probeTimer = setInterval(probe, 2000);
    if (!down && probeTimer) {
      clearInterval(probeTimer);
      probeTimer = 0;
    }
    if (ok && what === 'requests') for (const resync of resyncs) resync();
  }

  async function probe() {
    try {
      const res = await fetch('/sandbox/config', { cache: 'no-store' });
      if (res.ok) reachable('requests', true);
    } catch {
      reachable('requests', false);
    }
  }

  // reconcile makes list show items in order, re-rendering only the items
  // whose signature changed, so focus and scroll survive live updates.
  function reconcile(list, items, key, signature, render) {
    const old = new Map();
    for (const el of list.children) if (el.dataset.key) old.set(el.dataset.key, el);
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 60;
    let prev = null;
    for (const item of items) {
      const k = key(item);
      const sig = signature(item);
      let el = old.get(k);
      if (!el || el.dataset.sig !== sig) {
        const fresh = render(item);
        fresh.dataset.key = k;
        fresh.dataset.sig = sig;
        if (el) el.replaceWith(fresh);
        el = fresh;
      }
      old.delete(k);
      const want = prev ? prev.nextSibling : list.firstChild;
      if (want !== el) list.insertBefore(el, want);
      prev = el;
    }
    for (const el of old.values()) el.remove();
    // Non-item children (group headings) are dropped by callers before.
    if (nearBottom) list.scrollTop = list.scrollHeight;
  }

  // Temporal UI links.
  function workflowURL(workflowID) {
    const base = (state.config.temporal_ui_url || '').replace(/\/+$/, '');
    if (!base) return '';
    const ns = encodeURIComponent(state.config.namespace || 'default');
    const id = encodeURIComponent(workflowID).replace(/%3A/gi, ':');
    return `${base}/namespaces/${ns}/workflows/${id}`;
  }

  function caseLink(caseID, testid) {
    const url = workflowURL('case:' + caseID);
    if (!url) return h('span', { class: 'case-id' }, caseID);
    return h('a', { href: url, target: '_blank', rel: 'noopener', class: 'case-link', 'data-testid': testid || 'case-link', title: 'Open the Case workflow in the Temporal UI' }, caseID);
  }

  // markdown renders the small part of Discord markdown flexcord uses:
  // **bold**, *italic*, `code`, [text](url), bare links, case ids (linked to
  // their workflow) and mentions (<@id>, <#id>, <@&id>, shown by name as
  // Discord does). Everything else is text; nothing is parsed as HTML.
  const MD = /\[([^\]\n]+)\]\((https?:\/\/[^\s)]+)\)|\*\*([^*\n]+?)\*\*|\*([^*\s][^*\n]*?)\*|`([^`\n]+)`|(https?:\/\/[^\s<>()]+[^\s<>().,;:!?'"])|(\bC-[2-9A-HJKMNP-Z]{6}\b)|(<(?:@!?|#|@&)\d{1,20}>)/g;
  const MENTION = /<(@!?|#|@&)(\d{1,20})>/g;

  // mention returns what Discord shows for a mention: @name for a user,
  // #name for a channel, never the raw id.
  function mention(raw) {
    const m = /^<(@!?|#|@&)(\d+)>$/.exec(raw);
    if (!m) return raw;
    const [, kind, id] = m;
    let label;
    if (kind === '#') label = '#' + (channelName(id) || 'unknown-channel');
    else if (kind === '@&') label = '@unknown-role';
    else label = '@' + (state.users.get(id) || 'unknown-user');
    return h('span', { class: 'mention', 'data-testid': 'mention' }, label);
  }

  // mentions renders text with its mentions by name and nothing else.
  function mentions(text) {
    const frag = document.createDocumentFragment();
    const str = String(text || '');
    let last = 0;
    for (const m of str.matchAll(MENTION)) {
      if (m.index > last) frag.append(str.slice(last, m.index));
      frag.append(mention(m[0]));
      last = m.index + m[0].length;
    }
    if (last < str.length) frag.append(str.slice(last));
    return frag;
  }

  function markdown(text) {
    const frag = document.createDocumentFragment();
    let last = 0;
    for (const m of String(text || '').matchAll(MD)) {
      if (m.index > last) frag.append(text.slice(last, m.index));
      if (m[1] !== undefined) frag.append(h('a', { href: m[2], target: '_blank', rel: 'noopener' }, markdown(m[1])));
      else if (m[3] !== undefined) frag.append(h('strong', {}, markdown(m[3])));
      else if (m[4] !== undefined) frag.append(h('em', {}, markdown(m[4])));
      else if (m[5] !== undefined) frag.append(h('code', {}, m[5]));
      else if (m[6] !== undefined) frag.append(h('a', { href: m[6], target: '_blank', rel: 'noopener' }, m[6]));
      else if (m[7] !== undefined) frag.append(caseLink(m[7]));
      else if (m[8] !== undefined) frag.append(mention(m[8]));
      last = m.index + m[0].length;
    }
    if (last < String(text || '').length) frag.append(text.slice(last));
    return frag;
  }

  function safeURL(url) {
    return /^https?:\/\//i.test(url || '') ? url : '';
  }

  // ------------------------------------------------------------------ files

  // MAX_FILES is how many files one message can carry on Discord.
  const MAX_FILES = 10;

  function fileSize(n) {
    if (typeof n !== 'number') return '';
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
    return `${(n / 1024 / 1024).toFixed(1)} MB`;
  }

  // renderFiles shows the files of a message: pictures inline, other files
  // as download links. Each file is {name, type, size, url}; url is on the
  // page's own server.
  function renderFiles(files, testid) {
    if (!files.length) return null;
    return h('div', { class: 'attachments' }, files.map((f) => {
      if (/^image\//i.test(f.type || '')) {
        return h('a', { class: 'attachment-image', href: f.url, target: '_blank', rel: 'noopener', title: f.name },
          h('img', { src: f.url, alt: f.description || f.name, 'data-testid': testid + '-image', 'data-name': f.name }));
      }
      return h('a', { class: 'attachment-file', href: f.url, download: f.name, 'data-testid': testid + '-file', 'data-name': f.name },
        h('span', { 'aria-hidden': 'true' }, '↓'), h('span', { class: 'name' }, f.name), h('span', { class: 'size' }, fileSize(f.size)));
    }));
  }

  // Files picked in a composer, waiting to be sent: state.pending.member
  // and state.pending.agent.
  function pickFiles(who, input) {
    const list = state.pending[who];
    for (const f of input.files) {
      if (list.length >= MAX_FILES) {
        toast(`A message carries at most ${MAX_FILES} files.`, 'error');
        break;
      }
      list.push(f);
    }
    input.value = '';
    renderPending(who);
  }

  function renderPending(who) {
    const el = $(who + '-pending');
    const list = state.pending[who];
    el.hidden = list.length === 0;
    el.replaceChildren(...list.map((f, i) => h('li', { class: 'pending-file', 'data-testid': who + '-pending-file', title: f.name },
      h('span', { class: 'name' }, f.name), h('span', { class: 'size' }, fileSize(f.size)),
      h('button', {
        type: 'button', 'aria-label': 'Remove ' + f.name, 'data-testid': 'pending-remove',
        onclick: () => { list.splice(i, 1); renderPending(who); },
      }, '×'))));
  }

  function clearPending(who) {
    state.pending[who] = [];
    renderPending(who);
  }

  function clock(ts) {
    const d = new Date(ts);
    if (Number.isNaN(d.getTime())) return '';
    return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }

  // ---------------------------------------------------------------- Discord

  function member() {
    return state.members.find((m) => m.id === state.memberID) || { id: state.memberID, username: 'member-' + state.memberID };
  }

  function displayName(m) {
    return m.global_name || m.username || m.id;
  }

  async function loadDiscordState() {
    const st = await api('GET', `${DISCORD}/state`);
    const guild = (st.guilds || []).find((g) => g.id === state.config.discord_guild_id) || (st.guilds || [])[0] || { id: '', channels: [] };
    state.guildID = state.config.discord_guild_id || guild.id;
    const first = (guild.channels || [])[0] || '';
    state.channels.support = state.config.discord_channel_id || first;
    state.channels.bug = state.config.bug_channel_id || state.channels.support;
    state.channels.feature = state.config.feature_channel_id || state.channels.support;
    state.members = st.members || [];
    state.bot = st.bot || null;
    if (state.bot) {
      learnUser(state.bot);
      $('dm-title').textContent = 'Direct messages with ' + displayName(state.bot);
      $('member-input').placeholder = 'Message @' + displayName(state.bot);
    }
    for (const m of state.members) learnUser(m);
    if (!state.tab) state.tab = state.channels.support || tabs()[0]?.key || '';
  }

  // learnUser remembers a user's display name for mentions.
  function learnUser(u) {
    if (u && u.id) state.users.set(u.id, u.global_name || u.username || state.users.get(u.id) || '');
  }

  function channelName(id) {
    const t = tabs().find((x) => x.key === id);
    return t ? t.label.replace(/^#/, '').split(' · #')[0] : '';
  }

  async function ensureMember() {
    const wanted = new URLSearchParams(location.search).get('member') || state.config.member_id || (state.members[0] || {}).id || '200000000000000001';
    state.memberID = wanted;
    if (!state.members.some((m) => m.id === wanted)) {
      const m = await api('PUT', `${DISCORD}/members/${encodeURIComponent(wanted)}`, { username: 'sandbox-member', global_name: 'Sandbox Member', locale: 'en-US' });
      state.members = await api('GET', `${DISCORD}/members`);
      if (!state.members.some((x) => x.id === m.id)) state.members.push(m);
    }
  }

  const refreshMembers = coalesce(async () => {
    state.members = await api('GET', `${DISCORD}/members`);
    for (const m of state.members) learnUser(m);
    renderMemberBar();
  });

  function renderMemberBar() {
    const sel = $('member-select');
    sel.replaceChildren(...state.members.map((m) => h('option', { value: m.id, selected: m.id === state.memberID }, `${displayName(m)} (${m.id})`)));
    sel.value = state.memberID;
    const m = member();
    const locale = $('member-locale');
    if (![...locale.options].some((o) => o.value === m.locale) && m.locale) locale.append(h('option', { value: m.locale }, m.locale));
    locale.value = m.locale || 'en-US';
    $('dms-closed').checked = !!m.dms_closed;
    const link = $('conversation-link');
    const url = workflowURL('conversation:' + state.memberID);
    link.hidden = !url;
    if (url) link.href = url;
  }

  async function putMember(changes) {
    const m = { ...member(), ...changes };
    delete m.id;
    await api('PUT', `${DISCORD}/members/${encodeURIComponent(state.memberID)}`, m);
    await refreshMembers();
  }

  // tabs are the server channels the page shows, above the direct
  // messages; a channel used for several commands is one tab.
  function tabs() {
    const list = [];
    const named = [[state.channels.support, '#support'], [state.channels.bug, '#bug-report'], [state.channels.feature, '#feature-request']];
    for (const [id, label] of named) {
      if (!id) continue;
      const existing = list.find((t) => t.key === id);
      if (existing) existing.label += ' · ' + label;
      else list.push({ key: id, label });
    }
    return list;
  }

  function renderTabs() {
    const bar = $('discord-tabs');
    bar.replaceChildren(...tabs().map((t) => {
      const unread = t.key === state.tab ? 0 : (state.unread.get(t.key) || 0);
      return h('button', {
        type: 'button', role: 'tab', class: 'tab', id: 'tab-' + t.key, 'data-testid': 'tab-channel',
        'data-channel-id': t.key, 'aria-selected': String(state.tab === t.key), 'aria-controls': 'channel-transcript',
        tabindex: state.tab === t.key ? '0' : '-1',
        onclick: () => selectTab(t.key),
      }, t.label, unread ? h('span', { class: 'count', 'data-testid': 'unread', 'aria-label': `${unread} new` }, String(unread)) : null);
    }));
  }

  function selectTab(key) {
    state.tab = key;
    state.unread.delete(key);
    renderTabs();
    refreshChannel();
  }

  // Arrow keys move between the tabs, as in every tab list.
  function tabKeys(ev) {
    const keys = tabs().map((t) => t.key);
    const i = keys.indexOf(state.tab);
    const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: keys.length - 1 }[ev.key];
    if (next === undefined) return;
    ev.preventDefault();
    selectTab(keys[(next + keys.length) % keys.length]);
    $('tab-' + state.tab).focus();
  }

  // visible reports whether the member sees a record in a channel: public
  // messages, and ephemeral ones shown to them.
  function visible(r) {
    return !r.deleted && (!r.ephemeral || r.visible_to === state.memberID);
  }

  function showRecords(list, empty, records) {
    for (const r of records) {
      learnUser(r.message.author);
      for (const u of r.message.mentions || []) learnUser(u);
    }
    reconcile(list, records, (r) => r.message.id, (r) => JSON.stringify([r, state.users.size]), renderRecord);
    empty.hidden = records.length > 0;
  }

  // refreshDMs shows the member's direct messages with the bot: their DM
  // channel only. Ephemeral replies to commands used in a server channel
  // stay in that channel, as on Discord.
  const refreshDMs = coalesce(async () => {
    const records = await api('GET', `${DISCORD}/members/${encodeURIComponent(state.memberID)}/messages`);
    showRecords($('dm-transcript'), $('dm-empty'), (records || []).filter((r) => !r.guild_id && visible(r)));
  });

  // refreshChannel shows the selected server channel as the member sees it.
  const refreshChannel = coalesce(async () => {
    const list = $('channel-transcript');
    if (!state.tab) {
      showRecords(list, $('channel-empty'), []);
      return;
    }
    const all = await api('GET', `${DISCORD}/channels/${encodeURIComponent(state.tab)}/messages`);
    if (list.dataset.channel !== state.tab) {
      list.replaceChildren();
      list.dataset.channel = state.tab;
    }
    $('channel-empty-name').textContent = '#' + (channelName(state.tab) || 'channel');
    showRecords(list, $('channel-empty'), (all || []).filter(visible));
  });

  function refreshDiscord() {
    refreshDMs();
    refreshChannel();
    refreshAnnouncements();
  }

  function renderRecord(r) {
    const msg = r.message;
    const author = msg.author || {};
    const fromBot = r.from_bot || author.bot;
    const ephemeral = r.ephemeral || (msg.flags & FLAG_EPHEMERAL) !== 0;
    const name = author.global_name || author.username || 'unknown';
    const loading = (msg.flags & FLAG_LOADING) !== 0;
    const body = h('div', { class: 'body' },
      h('div', { class: 'msg-head' },
        h('span', { class: 'author' }, name),
        fromBot ? h('span', { class: 'bot-tag' }, 'APP') : null,
        h('time', { class: 'time', datetime: msg.timestamp }, clock(msg.timestamp)),
        msg.edited_timestamp ? h('span', { class: 'time' }, '(edited)') : null),
      loading && !msg.content
        ? h('div', { class: 'content loading' }, `${name} is thinking…`)
        : (msg.content ? h('div', { class: 'content', 'data-testid': 'dm-content' }, markdown(msg.content)) : null),
      renderFiles((msg.attachments || []).map((a) => ({
        name: a.filename, type: a.content_type, size: a.size, description: a.description, url: attachmentURL(msg, a),
      })), 'dm-attachment'),
      (msg.embeds || []).map(renderEmbed),
      renderComponents(r),
      ephemeral ? h('div', { class: 'ephemeral-note', 'data-testid': 'ephemeral-note' }, 'Only you can see this') : null);
    return h('li', {
      class: 'msg' + (fromBot ? ' bot' : ' user') + (ephemeral ? ' ephemeral' : ''),
      'data-testid': 'dm-message', 'data-message-id': msg.id, 'data-seq': r.seq, 'data-from': fromBot ? 'bot' : 'member',
      'data-where': r.guild_id ? 'channel' : 'dm', 'data-edited': msg.edited_timestamp ? 'true' : null,
      'data-ephemeral': ephemeral ? 'true' : 'false',
    }, h('div', { class: 'avatar', 'aria-hidden': 'true' }, name.slice(0, 1).toUpperCase()), body);
  }

  // attachmentURL is where the page loads an attachment from: the Discord
  // emulator serves it to the page (the Discord app) without the signed
  // CDN parameters a bot's copy of the URL carries.
  function attachmentURL(msg, a) {
    return `${DISCORD}/attachments/${encodeURIComponent(msg.channel_id)}/${encodeURIComponent(a.id)}/${encodeURIComponent(a.filename)}`;
  }

  function renderEmbed(e) {
    const url = safeURL(e.url);
    const title = e.title ? h('div', { class: 'embed-title', 'data-testid': 'embed-title' },
      url ? h('a', { href: url, target: '_blank', rel: 'noopener' }, e.title) : e.title) : null;
    const color = typeof e.color === 'number' ? '#' + e.color.toString(16).padStart(6, '0') : null;
    const el = h('div', { class: 'embed', 'data-testid': 'dm-embed' },
      e.author && e.author.name ? h('div', { class: 'embed-author' }, e.author.name) : null,
      title,
      e.description ? h('div', { class: 'embed-description', 'data-testid': 'embed-description' }, markdown(e.description)) : null,
      e.fields && e.fields.length ? h('div', { class: 'embed-fields' }, e.fields.map((f) => h('div', { class: 'embed-field' + (f.inline ? ' inline' : '') },
        h('div', { class: 'embed-field-name' }, f.name), h('div', {}, markdown(f.value))))) : null,
      e.footer && e.footer.text ? h('div', { class: 'embed-footer' }, e.footer.text) : null);
    if (color) el.style.borderLeftColor = color; // CSSOM, allowed by the page's CSP
    return el;
  }

  const BUTTON_STYLES = { 1: 'primary', 2: 'secondary', 3: 'success', 4: 'danger', 5: 'link' };

  function renderComponents(r) {
    const rows = r.message.components || [];
    if (!rows.length) return null;
    const renderOne = (c) => {
      if (c.type === 1) return h('div', { class: 'action-row' }, (c.components || []).map(renderOne));
      if (c.type !== 2) return h('span', { class: 'time' }, '(this kind of component is not shown in the sandbox)');
      const label = [c.emoji && c.emoji.name ? c.emoji.name + ' ' : '', c.label || ''].join('');
      if (c.style === 5) {
        return h('a', { class: 'dbutton secondary', href: safeURL(c.url) || '#', target: '_blank', rel: 'noopener', 'data-testid': 'dm-link-button' }, label, ' ↗');
      }
      return h('button', {
        type: 'button', class: 'dbutton ' + (BUTTON_STYLES[c.style] || 'secondary'), disabled: !!c.disabled,
        title: c.disabled ? 'This button no longer applies' : null,
        'data-testid': 'dm-button', 'data-custom-id': c.custom_id, 'data-message-id': r.message.id,
        onclick: (ev) => clickButton(ev.currentTarget, r.message.id, c.custom_id),
      }, label || c.custom_id);
    };
    return h('div', { class: 'components' }, rows.map(renderOne));
  }

  async function clickButton(el, messageID, customID) {
    try {
      const info = await busy(el, api('POST', `${DISCORD}/members/${encodeURIComponent(state.memberID)}/buttons`, { message_id: messageID, custom_id: customID }));
      interactionAnswered(info);
    } catch (err) {
      fail('Button')(err);
    }
  }

  // runCommand uses a slash command in its channel, the way a member does
  // on Discord: the channel is shown, and a reply only the member can see
  // appears there.
  async function runCommand(el) {
    const channel = state.channels[el.dataset.channel] || state.channels.support;
    if (channel && channel !== state.tab) selectTab(channel);
    try {
      const info = await busy(el, api('POST', `${DISCORD}/members/${encodeURIComponent(state.memberID)}/commands`, {
        name: el.dataset.command, guild_id: state.guildID, channel_id: channel,
      }));
      interactionAnswered(info);
    } catch (err) {
      fail('/' + el.dataset.command)(err);
    }
  }

  // interactionAnswered handles what the emulator says about an interaction
  // (over HTTP interactions it is already answered; over the gateway the
  // answer arrives later as events).
  function interactionAnswered(info) {
    if (!info) return;
    if (info.error) interactionFailed(info, info.error);
    if (info.modal) openModal(info);
  }

  // interactionFailed tells the visitor, once per interaction, that the bot
  // did not answer (the HTTP answer and the event stream both report it).
  function interactionFailed(info, why) {
    if (state.failedInteractions.has(info.id)) return;
    state.failedInteractions.add(info.id);
    const what = info.type === 2 ? '/' + info.name : (info.name || 'the interaction');
    toast(`The bot did not answer ${what}: ${why}`, 'error');
  }

  // sendDM sends what the member typed, with the files they picked as a
  // multipart form (content and files[n]), as the Discord app uploads them.
  async function sendDM(ev) {
    ev.preventDefault();
    const input = $('member-input');
    const content = input.value.trim();
    const files = state.pending.member;
    if (!content && !files.length) return;
    let body = { content };
    if (files.length) {
      body = new FormData();
      body.append('content', content);
      files.forEach((f, i) => body.append(`files[${i}]`, f, f.name));
    }
    try {
      await busy($('member-send'), api('POST', `${DISCORD}/members/${encodeURIComponent(state.memberID)}/dm`, body));
      input.value = '';
      clearPending('member');
      refreshDMs();
    } catch (err) {
      fail('Send')(err);
    }
    input.focus();
  }

  // Modal -------------------------------------------------------------------

  // textInputs returns the modal's text inputs, wherever they are nested
  // (action rows, or label components holding one component).
  function textInputs(components) {
    const out = [];
    const walk = (c, label) => {
      if (!c) return;
      if (c.type === 4) out.push({ ...c, label: c.label || label || c.custom_id });
      for (const k of c.components || []) walk(k, c.type === 18 ? c.label : label);
      if (c.component) walk(c.component, c.label);
    };
    for (const c of components || []) walk(c);
    return out;
  }

  function openModal(info) {
    if (!info.modal || state.openedModals.has(info.id)) return;
    state.openedModals.add(info.id);
    const modal = typeof info.modal === 'string' ? JSON.parse(info.modal) : info.modal;
    state.modal = { interactionID: info.id, customID: modal.custom_id };
    $('modal-title').textContent = modal.title || 'Form';
    $('modal-error').hidden = true;
    const fields = textInputs(modal.components).map((c) => {
      const attrs = {
        id: 'modal-' + c.custom_id, name: c.custom_id, 'data-testid': 'modal-input', 'data-custom-id': c.custom_id,
        placeholder: c.placeholder || null, required: !!c.required, value: c.value || null,
        minlength: c.min_length || null, maxlength: c.max_length || null,
      };
      const control = c.style === 2 ? h('textarea', { ...attrs, rows: 4 }) : h('input', attrs);
      if (c.value) control.value = c.value;
      return h('label', { class: 'field' }, h('span', {}, c.label, c.required ? h('span', { class: 'req', 'aria-hidden': 'true' }, ' *') : null), control);
    });
    $('modal-fields').replaceChildren(...fields);
    const dlg = $('modal');
    if (!dlg.open) dlg.showModal();
    const first = dlg.querySelector('input, textarea');
    if (first) first.focus();
  }

  async function submitModal(ev) {
    ev.preventDefault();
    const form = $('modal-form');
    if (!form.reportValidity() || !state.modal) return;
    const values = {};
    for (const el of form.querySelectorAll('[data-custom-id]')) values[el.dataset.customId] = el.value;
    try {
      const info = await busy($('modal-submit'), api('POST', `${DISCORD}/members/${encodeURIComponent(state.memberID)}/modals`, {
        interaction_id: state.modal.interactionID, custom_id: state.modal.customID, values,
      }));
      state.modal = null;
      $('modal').close();
      interactionAnswered(info);
    } catch (err) {
      const box = $('modal-error');
      box.textContent = err.message;
      box.hidden = false;
    }
  }

  function onDiscordEvent(type, e) {
    switch (type) {
      case 'message_create':
      case 'message_update':
      case 'message_delete': {
        const r = e.record;
        if (r && r.guild_id && announcementsChannel() && r.message.channel_id === announcementsChannel()) {
          refreshAnnouncements();
          if (type === 'message_create' && state.view !== 'announcements' && visible(r)) {
            state.announcementsUnread++;
            renderAnnouncementsUnread();
          }
        }
        if (!r || !r.guild_id) {
          refreshDMs();
        } else if (r.message.channel_id === state.tab) {
          refreshChannel();
        } else if (type === 'message_create' && visible(r) && tabs().some((t) => t.key === r.message.channel_id)) {
          state.unread.set(r.message.channel_id, (state.unread.get(r.message.channel_id) || 0) + 1);
          renderTabs();
        }
        break;
      }
      case 'member_update':
        refreshMembers();
        break;
      case 'modal':
        if (e.interaction && e.interaction.user_id === state.memberID) openModal(e.interaction);
        break;
      case 'interaction_failed':
        if (e.interaction && e.interaction.user_id === state.memberID) {
          interactionFailed(e.interaction, e.detail || e.interaction.error || 'failed');
        }
        break;
      default:
    }
  }

  // --------------------------------------------------------- #announcements

  // The #announcements channel, where flexcord posts the items of the
  // brand's feeds, shown the way Discord renders embeds; and the sample
  // blog (sandbox/feedemu), on which the visitor can publish a post and
  // make flexcord fetch it at once.

  function announcementsChannel() {
    return state.config.announcements_channel_id || '';
  }

  const LOOPBACK = ['localhost', '127.0.0.1', '[::1]'];

  // endpoint resolves a configured URL against the page. A URL naming this
  // very server by another loopback name (127.0.0.1 for localhost) is
  // turned into one on the page's own origin, which the page may call.
  function endpoint(raw) {
    const u = new URL(raw, location.href);
    if (u.origin !== location.origin && u.protocol === location.protocol && u.port === location.port &&
      LOOPBACK.includes(u.hostname) && LOOPBACK.includes(location.hostname)) {
      return location.origin + u.pathname + u.search + u.hash;
    }
    return u.href;
  }

  function sampleFeedURL() {
    const raw = (state.config.sample_feed_url || '').replace(/\/+$/, '');
    return raw ? endpoint(raw) : '';
  }

  // imageSource returns the URL to load a picture from, or '' when the page
  // must not load it: it loads nothing from the internet, only pictures on
  // its own server and the sample blog's.
  function imageSource(raw) {
    if (typeof raw !== 'string' || !/^https?:\/\//i.test(raw)) return '';
    let u;
    try {
      u = new URL(endpoint(raw));
    } catch {
      return '';
    }
    const allowed = [location.origin];
    const feed = sampleFeedURL();
    if (feed) allowed.push(new URL(feed).origin);
    return allowed.includes(u.origin) ? u.href : '';
  }

  function dateTime(ts) {
    const d = new Date(ts);
    if (Number.isNaN(d.getTime())) return '';
    return d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
  }

  // richText renders the Discord markdown an embed description uses:
  // **bold**, *italic* and _italic_, __underline__, ~~strike~~, `code`,
  // [text](link) and bare links (http and https only), and backslash
  // escapes; line breaks are kept by the stylesheet. Everything else is
  // text: it builds DOM nodes and never parses HTML.
  const RICH = /\\([\\`*_~[\]()<>#.!|{}+-])|\[([^\]\n]+)\]\(<?(https?:\/\/[^\s)<>]+)>?\)|\*\*([^*\n]+?)\*\*|__([^_\n]+?)__|\*([^*\s][^*\n]*?)\*|(?<![\p{L}\p{N}])_([^_\s][^_\n]*?)_(?![\p{L}\p{N}])|~~([^~\n]+?)~~|`([^`\n]+)`|(https?:\/\/[^\s<>()]+[^\s<>().,;:!?'"])/gu;

  function richText(text, inLink) {
    const str = String(text || '');
    const frag = document.createDocumentFragment();
    const link = (href, children) => (inLink ? children : h('a', { href, target: '_blank', rel: 'noopener' }, children));
    let last = 0;
    for (const m of str.matchAll(RICH)) {
      if (m.index > last) frag.append(str.slice(last, m.index));
      if (m[1] !== undefined) frag.append(m[1]);
      else if (m[2] !== undefined) frag.append(link(m[3], richText(m[2], true)));
      else if (m[4] !== undefined) frag.append(h('strong', {}, richText(m[4], inLink)));
      else if (m[5] !== undefined) frag.append(h('u', {}, richText(m[5], inLink)));
      else if (m[6] !== undefined) frag.append(h('em', {}, richText(m[6], inLink)));
      else if (m[7] !== undefined) frag.append(h('em', {}, richText(m[7], inLink)));
      else if (m[8] !== undefined) frag.append(h('s', {}, richText(m[8], inLink)));
      else if (m[9] !== undefined) frag.append(h('code', {}, m[9]));
      else if (m[10] !== undefined) frag.append(link(m[10], m[10]));
      last = m.index + m[0].length;
    }
    if (last < str.length) frag.append(str.slice(last));
    return frag;
  }

  // picture is an embed's image: shown when the page may load it, else a
  // link to it, as the page fetches nothing from the internet.
  function picture(raw, title) {
    const src = imageSource(raw);
    if (src) {
      return h('a', { class: 'embed-picture', href: src, target: '_blank', rel: 'noopener' },
        h('img', { src, alt: title ? 'Picture: ' + title : 'Picture', loading: 'lazy', 'data-testid': 'announcement-image' }));
    }
    const href = safeURL(raw);
    if (!href) return null;
    let host = '';
    try { host = new URL(href).host; } catch { host = ''; }
    return h('a', { class: 'embed-picture external', href, target: '_blank', rel: 'noopener', 'data-testid': 'announcement-image', 'data-external': 'true', title: href },
      `Picture on ${host || 'another site'}`, h('span', { 'aria-hidden': 'true' }, '↗'));
  }

  function icon(raw, cls) {
    const src = imageSource(raw);
    return src ? h('img', { class: cls, src, alt: '', loading: 'lazy' }) : null;
  }

  function renderRichEmbed(e) {
    const url = safeURL(e.url);
    const author = e.author && e.author.name ? h('div', { class: 'embed-author', 'data-testid': 'announcement-author' },
      icon(e.author.icon_url, 'embed-author-icon'),
      safeURL(e.author.url) ? h('a', { href: e.author.url, target: '_blank', rel: 'noopener' }, e.author.name) : e.author.name) : null;
    const footerText = e.footer && e.footer.text ? e.footer.text : '';
    const when = e.timestamp ? dateTime(e.timestamp) : '';
    const el = h('article', { class: 'embed rich-embed', 'data-testid': 'announcement-embed' },
      author,
      e.title ? h('div', { class: 'embed-title', 'data-testid': 'announcement-title' },
        url ? h('a', { href: url, target: '_blank', rel: 'noopener' }, e.title) : e.title) : null,
      e.description ? h('div', { class: 'embed-description', 'data-testid': 'announcement-description' }, richText(e.description)) : null,
      e.fields && e.fields.length ? h('div', { class: 'embed-fields' }, e.fields.map((f) => h('div', { class: 'embed-field' + (f.inline ? ' inline' : '') },
        h('div', { class: 'embed-field-name' }, f.name), h('div', {}, richText(f.value))))) : null,
      e.thumbnail && e.thumbnail.url && imageSource(e.thumbnail.url)
        ? h('img', { class: 'embed-thumbnail', src: imageSource(e.thumbnail.url), alt: '', loading: 'lazy' }) : null,
      e.image && e.image.url ? picture(e.image.url, e.title) : null,
      footerText || when ? h('div', { class: 'embed-footer', 'data-testid': 'announcement-footer' },
        icon(e.footer && e.footer.icon_url, 'embed-footer-icon'),
        footerText ? h('span', {}, footerText) : null,
        footerText && when ? h('span', { 'aria-hidden': 'true' }, '•') : null,
        when ? h('time', { datetime: e.timestamp }, when) : null) : null);
    if (typeof e.color === 'number') el.style.borderLeftColor = '#' + e.color.toString(16).padStart(6, '0'); // CSSOM, allowed by the CSP
    return el;
  }

  function renderAnnouncement(r) {
    const msg = r.message;
    const author = msg.author || {};
    const name = author.global_name || author.username || 'unknown';
    const published = (msg.flags & FLAG_CROSSPOSTED) !== 0;
    return h('li', {
      class: 'msg bot announcement', 'data-testid': 'announcement', 'data-message-id': msg.id,
      'data-published': published ? 'true' : 'false',
    },
    h('div', { class: 'avatar', 'aria-hidden': 'true' }, name.slice(0, 1).toUpperCase()),
    h('div', { class: 'body' },
      h('div', { class: 'msg-head' },
        h('span', { class: 'author' }, name),
        r.from_bot || author.bot ? h('span', { class: 'bot-tag' }, 'APP') : null,
        h('time', { class: 'time', datetime: msg.timestamp }, dateTime(msg.timestamp)),
        msg.edited_timestamp ? h('span', { class: 'time' }, '(edited)') : null,
        published ? h('span', {
          class: 'published', 'data-testid': 'announcement-badge',
          title: 'Published: crossposted to the servers that follow this announcement channel',
        }, 'Published') : null),
      msg.content ? h('div', { class: 'content' }, richText(msg.content)) : null,
      (msg.embeds || []).map(renderRichEmbed)));
  }

  const refreshAnnouncements = coalesce(async () => {
    const channel = announcementsChannel();
    if (!channel) return;
    const all = await api('GET', `${DISCORD}/channels/${encodeURIComponent(channel)}/messages`);
    const records = (all || []).filter(visible);
    for (const r of records) learnUser(r.message.author);
    reconcile($('announcements'), records, (r) => r.message.id, (r) => JSON.stringify(r), renderAnnouncement);
    $('announcements-empty').hidden = records.length > 0;
  });

  function renderAnnouncementsUnread() {
    const el = $('announcements-unread');
    const n = state.view === 'announcements' ? 0 : state.announcementsUnread;
    el.hidden = n === 0;
    el.textContent = n ? String(n) : '';
    if (n) el.setAttribute('aria-label', `${n} new`);
    else el.removeAttribute('aria-label');
  }

  // selectView shows the support channel with the direct messages, or
  // #announcements, and remembers the choice in the address (?view=).
  function selectView(view, focus) {
    if (view !== 'announcements' || !announcementsChannel()) view = 'dms';
    state.view = view;
    for (const tab of $('discord-views').querySelectorAll('[role="tab"]')) {
      const on = tab.dataset.view === view;
      tab.setAttribute('aria-selected', String(on));
      tab.tabIndex = on ? 0 : -1;
      if (on && focus) tab.focus();
    }
    $('view-dms').hidden = view !== 'dms';
    $('view-announcements').hidden = view !== 'announcements';
    if (view === 'announcements') {
      // Opened at the newest post, as Discord opens a channel.
      const list = $('announcements');
      list.scrollTop = list.scrollHeight;
      state.announcementsUnread = 0;
      refreshAnnouncements();
    }
    renderAnnouncementsUnread();
    const q = new URLSearchParams(location.search);
    if (view === 'dms') q.delete('view');
    else q.set('view', view);
    const search = q.toString();
    history.replaceState(null, '', search ? '?' + search : location.pathname);
  }

  // Arrow keys move between the views, as in every tab list.
  function viewKeys(ev) {
    const views = [...$('discord-views').querySelectorAll('[role="tab"]:not([hidden])')].map((t) => t.dataset.view);
    const i = views.indexOf(state.view);
    const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: views.length - 1 }[ev.key];
    if (next === undefined) return;
    ev.preventDefault();
    selectView(views[(next + views.length) % views.length], true);
  }

  // stickToBottom keeps a list scrolled to its newest entry while the
  // visitor has not scrolled up, also when a picture loads after its post
  // was shown and makes the post taller.
  function stickToBottom(list) {
    let stick = true;
    list.addEventListener('scroll', () => {
      stick = list.scrollHeight - list.scrollTop - list.clientHeight < 60;
    }, { passive: true });
    list.addEventListener('load', () => {
      if (stick) list.scrollTop = list.scrollHeight;
    }, true); // load does not bubble; capture it from the pictures
  }

  // setupAnnouncements shows what the configuration provides: the tab (a
  // channel), the publish form (a sample feed) and Fetch now (a run URL).
  function setupAnnouncements() {
    const channel = announcementsChannel();
    const feed = sampleFeedURL();
    const run = state.config.feed_run_url || '';
    $('view-tab-announcements').hidden = !channel;
    $('feed-tools').hidden = !feed && !run;
    $('feed-form').hidden = !feed;
    $('feed-publish').hidden = !feed;
    $('feed-run').hidden = !run;
    const link = $('feed-link');
    link.hidden = !feed;
    if (feed) link.href = feed + '.xml';
    selectView(new URLSearchParams(location.search).get('view') || 'dms', false);
  }

  function feedStatus(text, kind) {
    const el = $('feed-status');
    el.textContent = text;
    if (kind) el.dataset.kind = kind;
    else delete el.dataset.kind;
  }

  // send makes a request of the sample blog or of flexcord and returns the
  // decoded JSON answer; on an error status it throws with the reason the
  // answer gives ({"error": ...} or its text).
  async function send(method, url, body) {
    const init = { method, headers: {} };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    let text;
    try {
      res = await fetch(url, init);
      text = await res.text();
    } catch {
      throw new Error(`can't reach ${url}`);
    }
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    if (!res.ok) {
      const why = (data && typeof data.error === 'string' && data.error) || text.trim() || `${res.status} ${res.statusText}`;
      throw new Error(why);
    }
    return data;
  }

  // postHTML turns the text typed in the form into the post's HTML: the
  // text escaped, a paragraph per blank-line-separated block, <br> for the
  // other line breaks.
  function postHTML(text) {
    const escape = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
    return text.split(/\n\s*\n/).map((p) => p.trim()).filter(Boolean)
      .map((p) => '<p>' + escape(p).replace(/\n/g, '<br>') + '</p>').join('\n');
  }

  async function publishPost(ev) {
    ev.preventDefault();
    const form = $('feed-form');
    const title = $('feed-publish-title');
    title.value = title.value.trim();
    if (!form.reportValidity()) return;
    try {
      const item = await busy($('feed-publish'), send('POST', sampleFeedURL() + '/items', {
        title: title.value, html: postHTML($('feed-publish-text').value),
      }));
      form.reset();
      const next = state.config.feed_run_url ? 'Press Fetch now, or wait for flexcord\'s next poll.' : 'flexcord posts it at its next poll.';
      feedStatus(`Published “${item && item.title ? item.title : title.value}” on the sample blog. ${next}`, 'ok');
    } catch (err) {
      feedStatus('Could not publish: ' + err.message, 'error');
    }
  }

  async function runFeed(ev) {
    const el = ev.currentTarget;
    feedStatus('Fetching the sample feed…');
    try {
      const data = await busy(el, send('POST', endpoint(state.config.feed_run_url)));
      const n = data && typeof data.new_items === 'number' ? data.new_items : null;
      if (n === null) feedStatus('fetch started', 'ok');
      else feedStatus(`fetched: ${n === 0 ? 'no' : n} new post${n === 1 ? '' : 's'}`, 'ok');
      refreshAnnouncements();
    } catch (err) {
      feedStatus(err.message, 'error');
    }
  }

  // ------------------------------------------------------------- Flex desk

  const ACTIVE = ['waiting', 'assigned', 'wrapping'];

  function taskCase(t) {
    return (t.attributes && t.attributes.case_id) || '';
  }

  function taskWho(t) {
    const a = t.attributes || {};
    return a.discord_username || a.name || a.customerName || a.from || a.discord_user_id || '';
  }

  const refreshTasks = coalesce(async () => {
    const data = await api('GET', `${TWILIO}/tasks`);
    state.tasks = (data && data.tasks) || [];
    const byNewest = [...state.tasks].sort((a, b) => String(b.date_created).localeCompare(String(a.date_created)) || (b.sid < a.sid ? -1 : 1));
    const active = byNewest.filter((t) => ACTIVE.includes(t.status));
    const done = byNewest.filter((t) => !ACTIVE.includes(t.status)).slice(0, 20);
    if (!state.tasks.some((t) => t.sid === state.selectedTask)) {
      state.selectedTask = (active[0] || done[0] || {}).sid || '';
    }
    renderTaskList(active, done);
    renderTaskDetail();
    await refreshChat();
  });

  function renderTaskList(active, done) {
    const list = $('task-list');
    // Group headings are rebuilt every time; tasks are reconciled in between.
    for (const el of [...list.querySelectorAll('.group')]) el.remove();
    const items = [...active, ...done];
    reconcile(list, items, (t) => t.sid, (t) => JSON.stringify([t.status, t.reason, t.attributes, t.worker_name, t.sid === state.selectedTask]), renderTaskItem);
    if (done.length) {
      const firstDone = list.querySelector(`[data-key="${CSS.escape(done[0].sid)}"]`);
      list.insertBefore(h('li', { class: 'group', role: 'presentation' }, 'Done'), firstDone);
    }
    if (active.length) list.insertBefore(h('li', { class: 'group', role: 'presentation' }, 'Active'), list.firstChild);
    $('tasks-empty').hidden = items.length > 0;
  }

  function renderTaskItem(t) {
    const a = t.attributes || {};
    const selected = t.sid === state.selectedTask;
    return h('li', {},
      h('button', {
        type: 'button', class: 'task', 'data-testid': 'task', 'data-task-sid': t.sid, 'data-status': t.status,
        'data-case-id': taskCase(t), 'aria-current': selected ? 'true' : 'false',
        onclick: () => { state.selectedTask = t.sid; refreshTasks(); },
      },
      h('span', { class: 'task-line' },
        h('span', { class: 'task-case' }, taskCase(t) || t.sid.slice(0, 10) + '…'),
        h('span', { class: 'badge', 'data-status': t.status }, t.status)),
      h('span', { class: 'task-who' }, [taskWho(t), a.locale].filter(Boolean).join(' · '))));
  }

  function selectedTask() {
    return state.tasks.find((t) => t.sid === state.selectedTask);
  }

  function renderTaskDetail() {
    const t = selectedTask();
    const detail = $('task-detail');
    detail.hidden = !t;
    if (!t) return;
    detail.dataset.taskSid = t.sid;
    detail.dataset.status = t.status;
    const a = t.attributes || {};
    const caseID = taskCase(t);
    $('task-title').replaceChildren(...(caseID ? ['Case ', caseLink(caseID, 'task-case-link')] : ['Task ', t.sid]));
    const userID = a.discord_user_id || '';
    const convURL = userID ? workflowURL('conversation:' + userID) : '';
    $('task-meta').replaceChildren(...[
      h('span', { 'data-testid': 'task-member' }, taskWho(t) || 'unknown member'),
      a.locale ? h('span', { 'data-testid': 'task-locale' }, a.locale) : null,
      t.worker_name ? h('span', { 'data-testid': 'task-agent' }, 'Agent: ' + t.worker_name) : null,
      t.status === 'canceled' && t.reason ? h('span', { 'data-testid': 'task-reason' }, t.reason) : null,
      convURL ? h('a', { href: convURL, target: '_blank', rel: 'noopener', 'data-testid': 'task-conversation-link' }, 'Conversation workflow ↗') : null,
    ].filter(Boolean));
    const badge = $('task-status');
    badge.textContent = t.status;
    badge.dataset.status = t.status;

    $('accept').disabled = t.status !== 'waiting';
    $('cancel-task').disabled = t.status !== 'waiting';
    $('timeout-task').disabled = t.status !== 'waiting';
    $('wrapup').disabled = t.status !== 'assigned';
    $('complete').disabled = !['assigned', 'wrapping'].includes(t.status);
    const canChat = t.status === 'assigned' && t.conversation_state !== 'closed';
    $('agent-input').disabled = !canChat;
    $('agent-send').disabled = !canChat;
    $('agent-files').disabled = !canChat;
    if (!canChat && state.pending.agent.length) clearPending('agent');
    $('agent-input').placeholder = canChat ? 'Reply to the member' : (t.status === 'waiting' ? 'Accept the task to reply' : 'This chat has ended');

    const rows = [
      ['Case', caseID ? caseLink(caseID, 'attr-case-link') : null],
      ['Member', taskWho(t)],
      ['Discord user id', userID],
      ['Server', a.guild_name || a.guild_id],
      ['Language', a.locale],
      ['Conversation', t.conversation_sid],
      ['Task', t.sid],
    ];
    const articles = Array.isArray(a.articles) ? a.articles : [];
    if (articles.length) {
      rows.push(['Articles offered', h('ul', { class: 'articles' }, articles.map((x) => h('li', {},
        safeURL(x.url) ? h('a', { href: x.url, target: '_blank', rel: 'noopener' }, x.title || x.url) : (x.title || ''))))]);
    }
    $('task-attrs').replaceChildren(...rows.filter(([, v]) => v).flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
    const transcript = Array.isArray(a.transcript) ? a.transcript.join('\n') : (a.transcript || '');
    $('task-transcript').textContent = transcript || '(no bot transcript)';
    $('task-raw').textContent = JSON.stringify(a, null, 2);
  }

  const refreshChat = coalesce(async () => {
    const t = selectedTask();
    const list = $('agent-chat');
    if (!t || !t.conversation_sid) {
      list.replaceChildren();
      return;
    }
    const data = await api('GET', `${TWILIO}/conversations/${encodeURIComponent(t.conversation_sid)}/messages`);
    const msgs = ((data && data.messages) || []).filter((m) => m.conversation_sid === undefined || m.conversation_sid === t.conversation_sid);
    if (list.dataset.conversation !== t.conversation_sid) {
      list.replaceChildren();
      list.dataset.conversation = t.conversation_sid;
    }
    // Flex shows the customer by the name on the task, not by their chat identity.
    const attrs = t.attributes || {};
    const customer = attrs.customerName || attrs.name || '';
    const who = (m) => {
      if (m.role === 'agent') return `${m.author} (you)`;
      if (customer && typeof m.author === 'string' && m.author.startsWith('discord:')) return customer;
      return m.author;
    };
    const media = (m) => (m.media || []).map((x) => ({ name: x.filename || x.sid, type: x.content_type, size: x.size, url: x.url }));
    reconcile(list, msgs, (m) => m.sid, (m) => JSON.stringify([m.body, who(m), m.role, media(m)]), (m) => h('li', {
      class: 'bubble', 'data-testid': 'agent-message', 'data-role': m.role, 'data-sid': m.sid,
    }, h('div', { class: 'who' }, who(m)), m.body ? h('div', { class: 'text' }, mentions(m.body)) : null,
    renderFiles(media(m), 'agent-attachment')));
  });

  async function taskAction(el, action, body) {
    const t = selectedTask();
    if (!t) return;
    try {
      await busy(el, api('POST', `${TWILIO}/tasks/${encodeURIComponent(t.sid)}/${action}`, body));
    } catch (err) {
      fail(el.textContent.trim())(err);
    }
    await refreshTasks();
  }

  // sendAgentMessage sends the agent's reply the way Flex does: each file
  // is uploaded to the Media Content Service first, then one message
  // carries them.
  async function sendAgentMessage(ev) {
    ev.preventDefault();
    const t = selectedTask();
    const input = $('agent-input');
    const text = input.value.trim();
    const files = state.pending.agent;
    if (!t || (!text && !files.length)) return;
    const send = async () => {
      const sids = [];
      for (const f of files) {
        const m = await api('POST', `${TWILIO}/media?filename=${encodeURIComponent(f.name)}`, f);
        sids.push(m.sid);
      }
      const body = sids.length ? { body: text, media_sids: sids } : { body: text };
      return api('POST', `${TWILIO}/tasks/${encodeURIComponent(t.sid)}/messages`, body);
    };
    try {
      await busy($('agent-send'), send());
      input.value = '';
      clearPending('agent');
    } catch (err) {
      fail('Send')(err);
    }
    await refreshTasks();
    input.focus();
  }

  function isOurFault(f) {
    const x = f.fault || {};
    return x.path === TWILIO_FAULT.path && x.status === TWILIO_FAULT.status && f.remaining === -1;
  }

  async function loadTwilioFaults() {
    const data = await api('GET', `${TWILIO}/faults`);
    state.twilioFaults = ((data && data.faults) || []).filter(isOurFault).map((f) => f.id);
    $('twilio-5xx').checked = state.twilioFaults.length > 0;
  }

  async function toggleTwilioFault(ev) {
    const on = ev.currentTarget.checked;
    try {
      if (on) {
        const res = await api('POST', `${TWILIO}/faults`, TWILIO_FAULT);
        state.twilioFaults.push(res.id);
        toast('Twilio now answers 503 to the member\'s messages. Watch the retries in the Temporal UI.');
      } else {
        await loadTwilioFaults();
        for (const id of state.twilioFaults) await api('DELETE', `${TWILIO}/faults/${encodeURIComponent(id)}`);
        toast('Twilio is healthy again.');
      }
    } catch (err) {
      fail('Twilio fault')(err);
    }
    await loadTwilioFaults().catch(() => {});
  }

  function onTwilioEvent(type, e) {
    if (type === 'message.added') {
      const t = selectedTask();
      if (t && e.conversation_sid === t.conversation_sid) refreshChat();
      return;
    }
    refreshTasks();
  }

  // ------------------------------------------------------------ live updates

  function setConn(name, st) {
    const el = $('conn-' + name);
    el.dataset.state = st;
    el.querySelector('.conn-state').textContent = st;
  }

  // live subscribes to an emulator's Server-Sent Events; on every (re)connect
  // it refetches everything, since events may have been missed meanwhile.
  function live(name, url, types, onEvent, resync) {
    const es = new EventSource(url);
    es.onopen = () => {
      setConn(name, 'live');
      reachable(name, true);
      resync();
    };
    es.onerror = () => {
      reachable(name, false);
      if (es.readyState === EventSource.CLOSED) {
        setConn(name, 'offline');
        setTimeout(() => live(name, url, types, onEvent, resync), 3000);
      } else {
        setConn(name, 'connecting');
      }
    };
    for (const type of types) {
      es.addEventListener(type, (ev) => {
        let data;
        try { data = JSON.parse(ev.data); } catch { return; }
        onEvent(type, data);
      });
    }
  }

  // ------------------------------------------------------------------ start

  function wire() {
    for (const btn of document.querySelectorAll('[data-command]')) btn.addEventListener('click', () => runCommand(btn));
    $('member-form').addEventListener('submit', sendDM);
    $('member-files').addEventListener('change', (ev) => pickFiles('member', ev.currentTarget));
    $('agent-files').addEventListener('change', (ev) => pickFiles('agent', ev.currentTarget));
    stickToBottom($('dm-transcript'));
    stickToBottom($('agent-chat'));
    $('discord-tabs').addEventListener('keydown', tabKeys);
    $('member-select').addEventListener('change', (ev) => {
      state.memberID = ev.currentTarget.value;
      state.unread.clear();
      const q = new URLSearchParams(location.search);
      q.set('member', state.memberID);
      history.replaceState(null, '', '?' + q.toString());
      renderMemberBar();
      refreshDiscord();
    });
    $('member-locale').addEventListener('change', (ev) => putMember({ locale: ev.currentTarget.value }).catch(fail('Language')));
    $('dms-closed').addEventListener('change', (ev) => {
      const closed = ev.currentTarget.checked;
      putMember({ dms_closed: closed })
        .then(() => toast(closed ? 'The bot can no longer DM this member (Discord error 50007).' : 'DMs are open again. Retry the failed deliveries with: flexcord deliveries retry --all'))
        .catch(fail('DMs closed'));
    });
    $('new-member-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const form = ev.currentTarget;
      const id = $('new-member-id').value.trim();
      const name = $('new-member-name').value.trim();
      try {
        await api('PUT', `${DISCORD}/members/${encodeURIComponent(id)}`, { username: name.toLowerCase().replace(/[^a-z0-9_.]+/g, '_'), global_name: name, locale: $('member-locale').value });
        state.memberID = id;
        $('new-member').open = false;
        form.reset();
        await refreshMembers();
        refreshDiscord();
      } catch (err) {
        fail('New member')(err);
      }
    });
    $('modal-form').addEventListener('submit', submitModal);
    $('modal-cancel').addEventListener('click', () => { state.modal = null; $('modal').close(); });
    $('accept').addEventListener('click', (ev) => {
      const agent = $('agent-name').value.trim();
      if (!agent) {
        $('agent-name').focus();
        toast('Type an agent name first.', 'error');
        return;
      }
      taskAction(ev.currentTarget, 'accept', { agent });
    });
    $('wrapup').addEventListener('click', (ev) => taskAction(ev.currentTarget, 'wrapup'));
    $('complete').addEventListener('click', (ev) => taskAction(ev.currentTarget, 'complete'));
    $('cancel-task').addEventListener('click', (ev) => taskAction(ev.currentTarget, 'cancel'));
    $('timeout-task').addEventListener('click', (ev) => taskAction(ev.currentTarget, 'timeout'));
    $('agent-form').addEventListener('submit', sendAgentMessage);
    $('twilio-5xx').addEventListener('change', toggleTwilioFault);
    $('discord-views').addEventListener('click', (ev) => {
      const tab = ev.target.closest('[role="tab"]');
      if (tab) selectView(tab.dataset.view, false);
    });
    $('discord-views').addEventListener('keydown', viewKeys);
    $('feed-form').addEventListener('submit', publishPost);
    stickToBottom($('announcements'));
    $('feed-run').addEventListener('click', runFeed);
  }

  const started = { config: false, discord: false, twilio: false };

  // init loads what the page needs and subscribes to both emulators. A part
  // that could not reach flexcord throws OfflineError and is tried again.
  async function init() {
    if (!started.config) {
      state.config = await api('GET', '/sandbox/config');
      started.config = true;
      const ui = $('temporal-link');
      if (state.config.temporal_ui_url) {
        ui.href = state.config.temporal_ui_url;
        ui.hidden = false;
      }
      setupAnnouncements();
    }
    if (!started.discord) {
      try {
        await loadDiscordState();
        await ensureMember();
        renderMemberBar();
        renderTabs();
        refreshDiscord();
        live('discord', `${DISCORD}/events`, DISCORD_EVENTS, onDiscordEvent, () => { refreshMembers(); refreshDiscord(); });
        started.discord = true;
      } catch (err) {
        if (err instanceof OfflineError) throw err;
        setConn('discord', 'offline');
        fail('Discord emulator')(err);
      }
    }
    if (!started.twilio) {
      try {
        await loadTwilioFaults();
        refreshTasks();
        live('twilio', `${TWILIO}/events`, TWILIO_EVENTS, onTwilioEvent, () => refreshTasks());
        started.twilio = true;
      } catch (err) {
        if (err instanceof OfflineError) throw err;
        setConn('twilio', 'offline');
        fail('Twilio emulator')(err);
      }
    }
    document.body.dataset.ready = 'true';
  }

  async function start() {
    wire();
    // After requests failed, fetch everything again once they go through.
    resyncs.push(() => {
      if (started.discord) {
        refreshMembers();
        refreshDiscord();
      }
      if (started.twilio) refreshTasks();
    });
    for (;;) {
      try {
        await init();
        return;
      } catch (err) {
        if (!(err instanceof OfflineError)) throw err;
        await new Promise((resolve) => setTimeout(resolve, 2000));
      }
    }
  }

  start().catch(fail('Sandbox'));
})();
