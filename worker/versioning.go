package worker

import (
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// DeploymentOptions returns the Worker Versioning options of a worker that belongs to Worker
// Deployment deploymentName at build buildID, or none (an unversioned worker) unless both are
// set. New gives them to the main worker and to the provider workers alike, so that the
// activities a workflow of this build schedules on the provider queues run on this build too.
//
// Workflows default to AutoUpgrade: each workflow task runs on the deployment's current version,
// so a running conversation moves to a new build as soon as it is made current. Conversations,
// cases and feeds run for days or weeks (through continue-as-new), so Pinned would keep every
// old build running until its last conversation ends. Moving them is safe because of the
// project's versioning rule (workflows/versioning.go): a change to the commands a running
// workflow issues goes behind workflow.GetVersion, and the recorded histories of the old
// behaviour are replayed by the tests before a build is released.
func DeploymentOptions(deploymentName, buildID string) sdkworker.DeploymentOptions {
	if deploymentName == "" || buildID == "" {
		return sdkworker.DeploymentOptions{}
	}
	return sdkworker.DeploymentOptions{
		UseVersioning:             true,
		Version:                   sdkworker.WorkerDeploymentVersion{DeploymentName: deploymentName, BuildID: buildID},
		DefaultVersioningBehavior: workflow.VersioningBehaviorAutoUpgrade,
	}
}
