package benchmarks

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/trailhq/trail/internal/bench"
)

// WriteTable writes rep as a table, then the ratios.
func WriteTable(w io.Writer, rep Report) error {
	fmt.Fprintf(w, "%s (%s), run as %s; %d CPUs; events of about %d bytes; medians of %d run(s)\n\n",
		rep.PostgreSQL, strings.Join(rep.Settings, " "), orSelf(rep.RunAs), rep.CPUs, rep.Size, runs(rep))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "system\tmode\tmethod\tevents\tevents/s\tp50 ms\tp99 ms\tmax ms\tallocs/ev\tB/ev\tRSS MB\t")
	for _, r := range rep.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%.1f\t%.0f\t%s\t\n",
			r.System, r.Mode, r.Method, r.Events, r.EventsPerSec, r.AckP50ms, r.AckP99ms, r.AckMaxms,
			r.AllocsPerEvent, r.AllocBytesPerEvent, bench.FormatRSS(r.PeakRSSMB))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nallocs/ev, B/ev: heap allocations per event in this process (trail: client, server and engine; postgresql: its Go client only).")
	fmt.Fprintln(w, "RSS MB: this process's peak during the run (trail's whole; n/a for postgresql, whose work is in its own processes).")
	fmt.Fprintln(w)
	for _, r := range rep.Ratios {
		verdict := "goal met"
		if !r.GoalMet {
			verdict = "goal NOT met"
		}
		per := make([]string, len(r.PerRun))
		for i, x := range r.PerRun {
			per[i] = fmt.Sprintf("%.2f", x)
		}
		fmt.Fprintf(w, "%s / postgresql, %s: %.2f× (runs: %s; medians %.0f vs %.0f events/s); goal ≥ %g×: %s\n",
			r.System, r.Mode, r.Ratio, strings.Join(per, " "), r.Trail, r.PostgreSQL, r.Goal, verdict)
	}
	return nil
}

func orSelf(user string) string {
	if user == "" {
		return "this user"
	}
	return user
}

func runs(rep Report) int {
	if len(rep.Rows) == 0 {
		return 0
	}
	return rep.Rows[0].Runs
}
