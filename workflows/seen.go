package workflows

// SeenSet remembers the most recent event ids a workflow has handled, so that a signal delivered
// twice (a re-sent webhook, a retried interaction) has no second effect. It is bounded: the oldest
// ids are forgotten first. It is plain data, carried through continue-as-new.
type SeenSet struct {
	IDs []string `json:"ids,omitempty"`
	Max int      `json:"max"`

	index map[string]struct{}
}

// DefaultSeenSetSize is how many event ids a workflow remembers.
const DefaultSeenSetSize = 2048

// Add records id and reports whether it is new. An empty id is always new: events without an id
// cannot be de-duplicated.
func (s *SeenSet) Add(id string) bool {
	if id == "" {
		return true
	}
	if s.index == nil {
		s.index = make(map[string]struct{}, len(s.IDs))
		for _, v := range s.IDs {
			s.index[v] = struct{}{}
		}
	}
	if _, ok := s.index[id]; ok {
		return false
	}
	if s.Max <= 0 {
		s.Max = DefaultSeenSetSize
	}
	if len(s.IDs) >= s.Max {
		drop := len(s.IDs) - s.Max + 1
		for _, old := range s.IDs[:drop] {
			delete(s.index, old)
		}
		s.IDs = append(s.IDs[:0:0], s.IDs[drop:]...)
	}
	s.IDs = append(s.IDs, id)
	s.index[id] = struct{}{}
	return true
}
