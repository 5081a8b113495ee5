// CPU shares and load of the processes a run spans, read from /proc.

package bench

import (
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times (100 on
// every Linux this runs on).
const clockTicks = 100

// cpuTicks is a process's user+system CPU time in clock ticks; -1 when it
// cannot be read (gone, or no /proc).
func cpuTicks(pid string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return -1
	}
	// The command name (field 2) may hold spaces; the fields after its
	// closing parenthesis start at field 3 (state).
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return -1
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return utime + stime
}

// cpuPercent is the share of one core a process used between two readings
// seconds apart (100 = one core busy all along).
func cpuPercent(before, after int64, seconds float64) float64 {
	if before < 0 || after < 0 || seconds <= 0 {
		return 0
	}
	return float64(after-before) / clockTicks / seconds * 100
}

// loadAverage is /proc/loadavg's three load averages, as uptime prints them.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// motoPID finds the moto_server process listening on the endpoint's port
// (the launcher may be a shim, so the process is found by its command line).
func motoPID(endpoint string) string {
	i := strings.LastIndexByte(endpoint, ':')
	if i < 0 {
		return ""
	}
	port := endpoint[i+1:]
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return ""
	}
	found := ""
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if !strings.Contains(string(b), "moto") {
			continue
		}
		for j, a := range args {
			if a == "-p" && j+1 < len(args) && args[j+1] == port {
				// The deepest match is the Python process itself (a shim
				// execs or forks it with the same arguments).
				if found == "" || cpuTicks(e.Name()) >= cpuTicks(found) {
					found = e.Name()
				}
			}
		}
	}
	return found
}
