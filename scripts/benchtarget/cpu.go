package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicksPerS is the unit of /proc/PID/stat's CPU times (USER_HZ, 100 on Linux).
const clockTicksPerS = 100

// proc is one process of the target as topology.json lists it.
type proc struct {
	Role string `json:"role"`
	Unit string `json:"unit"`
	Mode string `json:"mode"`
	PID  int    `json:"pid"`
}

// group is the name CPU is summed under: the role, and for unit replicas their mode.
func (p proc) group() string {
	if p.Role == "unit" {
		return "unit " + p.Mode
	}
	return p.Role
}

// cpuPerPayment offers -rate payments/s (open model) and reports the CPU each kind of process
// spent per payment: its CPU time over the step, less what it spends idle over as long, divided
// by the payments completed. The idle share (polls, heartbeats) is reported apart.
func cpuPerPayment(ctx context.Context, t *target, o options) error {
	procs, err := readProcs(o.dataDir)
	if err != nil {
		return err
	}
	idle0 := cpuTimes(procs)
	sleep(ctx, o.step)
	idle := diff(cpuTimes(procs), idle0)
	var (
		busy0, busy map[int]time.Duration
		self0, self time.Duration
	)
	s, err := measureRate(ctx, t, o.rate, 0, o, func(begin bool) {
		if begin {
			busy0, self0 = cpuTimes(procs), selfCPU()
			return
		}
		busy, self = diff(cpuTimes(procs), busy0), selfCPU()-self0
	})
	if err != nil {
		return err
	}
	if busy == nil {
		return ctx.Err()
	}
	payments := s.PaymentsPS * o.step.Seconds()
	if payments == 0 {
		return fmt.Errorf("rate %.0f/s: no payment completed", o.rate)
	}
	type row struct {
		Group       string  `json:"group"`
		Processes   int     `json:"processes"`
		IdlePercent float64 `json:"idle_cpu_percent"` // of one CPU, all its processes together
		MicrosPer   float64 `json:"cpu_us_per_payment"`
	}
	rows := map[string]*row{}
	for _, p := range procs {
		r := rows[p.group()]
		if r == nil {
			r = &row{Group: p.group()}
			rows[p.group()] = r
		}
		r.Processes++
		r.IdlePercent += 100 * idle[p.PID].Seconds() / o.step.Seconds()
		r.MicrosPer += float64((busy[p.PID] - idle[p.PID]).Microseconds()) / payments
	}
	rows["client (this driver)"] = &row{Group: "client (this driver)", Processes: 1, MicrosPer: float64(self.Microseconds()) / payments}
	var out []row
	var total float64
	for _, r := range rows {
		out = append(out, *r)
		total += r.MicrosPer
	}
	slices.SortFunc(out, func(a, b row) int { return strings.Compare(a.Group, b.Group) })
	fmt.Printf("CPU per payment at %.0f payments/s (p99 %.1f ms):\n", s.PaymentsPS, s.P99MS)
	for _, r := range out {
		fmt.Printf("  %-22s %2d processes  %7.1f µs/payment  (idle: %5.1f%% of a CPU)\n", r.Group, r.Processes, r.MicrosPer, r.IdlePercent)
	}
	fmt.Printf("  %-22s               %7.1f µs/payment\n", "total", total)
	b, _ := json.Marshal(map[string]any{"mode": "cpu", "step": s, "total_cpu_us_per_payment": total, "groups": out})
	fmt.Println(string(b))
	return nil
}

func readProcs(dir string) ([]proc, error) {
	var top struct {
		Processes []proc `json:"processes"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "topology.json"))
	if err != nil {
		return nil, fmt.Errorf("read topology: %w", err)
	}
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, fmt.Errorf("decode topology: %w", err)
	}
	return top.Processes, nil
}

// cpuTimes reads each process's user+system CPU time from /proc (0 for one that is gone).
func cpuTimes(procs []proc) map[int]time.Duration {
	out := make(map[int]time.Duration, len(procs))
	for _, p := range procs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.PID))
		if err != nil {
			continue
		}
		// The fields after the command (which may hold spaces) start after its closing ')'.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) < 13 {
			continue
		}
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		out[p.PID] = time.Duration(utime+stime) * time.Second / clockTicksPerS
	}
	return out
}

func diff(after, before map[int]time.Duration) map[int]time.Duration {
	out := make(map[int]time.Duration, len(after))
	for pid, d := range after {
		out[pid] = d - before[pid]
	}
	return out
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
