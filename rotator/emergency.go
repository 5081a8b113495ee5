package rotator

import (
	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inventory"
)

// PersonnelJobs returns a rotation job for every secret the person (or
// team) had access to (inventory.ManagedSecret.HasOwner), each with its
// policy, under one personnel cause: the grace is each policy's grace for
// events.CausePersonnel. cause.Kind is forced to personnel.
func PersonnelJobs(secrets []inventory.ManagedSecret, person string, policyOf func(inventory.ManagedSecret) RotationPolicy, cause Trigger) []Job {
	cause.Kind = events.CausePersonnel
	var jobs []Job
	for _, ms := range secrets {
		if ms.HasOwner(person) {
			jobs = append(jobs, Job{Secret: ms, Policy: policyOf(ms), Trigger: cause})
		}
	}
	return jobs
}
