package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/lakirotator/lakirotator/httpapi"
)

// printOldCredentials lists the old credentials still in their grace, with
// LakiConnect's last_used_at: who is still on the old key. Nothing is
// printed when there are none.
func printOldCredentials(stdio IO, inv httpapi.Inventory) error {
	var rows []httpapi.SecretStatus
	for _, s := range inv.Secrets {
		if s.OldCredential != nil {
			rows = append(rows, s)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	fmt.Fprintln(stdio.Out, "\nOld credentials in their grace:")
	w := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SECRET\tOLD KEY\tENDS AT\tLAST USED\tSTILL IN USE")
	for _, s := range rows {
		o := s.OldCredential
		inUse := "no"
		if o.StillInUse {
			inUse = "YES"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", s.Name, o.ID, when(o.EndsAt), when(o.LastUsedAt), inUse)
	}
	return w.Flush()
}

func when(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
