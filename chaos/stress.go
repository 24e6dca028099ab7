package chaos

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// stressSlice is the period of a CPU burner's duty cycle.
const stressSlice = 10 * time.Millisecond

// Stressor is StressChaos on the machine Redline runs on (the local target shares it): CPU
// burners at a duty cycle and memory held and touched, inside Redline's own process, so that
// they end with it. On Kubernetes the same fault goes to Chaos Mesh's stress-ng instead.
type Stressor struct {
	mu      sync.Mutex
	running map[string]*stress
}

type stress struct {
	stop    chan struct{}
	done    sync.WaitGroup
	mem     []byte
	workers int
	slices  atomic.Int64 // busy slices burned: proof that the burners run
}

var (
	_ Executor = (*Stressor)(nil)
	_ Prover   = (*Stressor)(nil)
)

// NewStressor returns a stressor with nothing running.
func NewStressor() *Stressor { return &Stressor{running: map[string]*stress{}} }

// Plan names the burners of the fault.
func (s *Stressor) Plan(f Fault, t Target) (Undo, error) {
	if f.Kind != KindStress {
		return Undo{}, fmt.Errorf("plan %s on %s: %w", f, t.Name, ErrNoExecutor)
	}
	return Undo{Op: OpStopStressor, Toxic: f.Name + "@" + t.Name, InProcess: true}, nil
}

// Inject starts the burners; a second injection of the same name does nothing. The stresses
// running at once share the limits, since they all run in this process: one that would take
// the sum over StressWorkersMax or StressMemoryBytesMax is refused.
func (s *Stressor) Inject(_ context.Context, f Fault, t Target, u Undo) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running[u.Toxic] != nil {
		return nil
	}
	workers, bytes := f.Params.CPUWorkers, f.Params.MemoryBytes
	for _, st := range s.running {
		workers, bytes = workers+st.workers, bytes+int64(len(st.mem))
	}
	if err := CheckStress(workers, bytes); err != nil {
		return fmt.Errorf("inject %s on %s: %w, counting the stresses already running", f, t.Name, err)
	}
	st := &stress{stop: make(chan struct{}), workers: f.Params.CPUWorkers}
	if f.Params.MemoryBytes > 0 {
		st.mem = make([]byte, f.Params.MemoryBytes)
		for i := 0; i < len(st.mem); i += 4096 {
			st.mem[i] = 1 // touch every page so that it is resident
		}
	}
	load := f.Params.CPULoadPercent
	if load <= 0 || load > 100 {
		load = 100
	}
	busy := stressSlice * time.Duration(load) / 100
	for range f.Params.CPUWorkers {
		st.done.Add(1)
		// Owned by the stress: Recover closes stop and waits for done.
		go func() {
			defer st.done.Done()
			burn(st.stop, busy, &st.slices)
		}()
	}
	s.running[u.Toxic] = st
	return nil
}

// burn spins for busy in every slice until stop closes, counting the slices.
func burn(stop <-chan struct{}, busy time.Duration, slices *atomic.Int64) {
	for {
		slices.Add(1)
		began := time.Now()
		for time.Since(began) < busy {
			select {
			case <-stop:
				return
			default:
			}
		}
		select {
		case <-stop:
			return
		case <-time.After(stressSlice - busy):
		}
	}
}

// Recover stops the burners and frees the memory.
func (s *Stressor) Recover(_ context.Context, u Undo) error {
	s.mu.Lock()
	st := s.running[u.Toxic]
	delete(s.running, u.Toxic)
	s.mu.Unlock()
	if st != nil {
		close(st.stop)
		st.done.Wait()
		st.mem = nil
	}
	return nil
}

// Evidence watches the burners run for a short window and reports the CPU the process used;
// how much CPU they get depends on the machine's load, so running burners are the proof.
func (s *Stressor) Evidence(ctx context.Context, f Fault, _ Target, u Undo) Evidence {
	began := time.Now()
	s.mu.Lock()
	st := s.running[u.Toxic]
	s.mu.Unlock()
	if st == nil {
		return Evidence{Status: EvidenceMissing, Detail: "no burner is running"}
	}
	if f.Params.CPUWorkers == 0 {
		return Evidence{Status: EvidenceObserved, Detail: fmt.Sprintf("%d bytes held and touched", len(st.mem))}
	}
	cpu0, n0 := cpuTime(), st.slices.Load()
	select {
	case <-ctx.Done():
	case <-time.After(200 * time.Millisecond):
	}
	used, wall, n := cpuTime()-cpu0, time.Since(began), st.slices.Load()-n0
	if n > 0 {
		return Evidence{Status: EvidenceObserved, Latency: wall,
			Detail: fmt.Sprintf("%d burners ran %d slices; the process used %s of CPU in %s", f.Params.CPUWorkers, n, used.Round(time.Millisecond), wall.Round(time.Millisecond))}
	}
	return Evidence{Status: EvidenceMissing, Latency: wall, Detail: fmt.Sprintf("no burner ran in %s", wall.Round(time.Millisecond))}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
