package plan

import "time"

// Limits on plan files. Each refuses an input that is a mistake or an attack long before it
// could cost memory or time, with a message that names the limit.
const (
	FileBytesMax      = 1 << 20   // a plan file
	NodesMax          = 1_000_000 // YAML nodes visited, aliases expanded: no billion laughs
	DepthMax          = 32        // YAML nesting, aliases followed
	ProblemsMax       = 100       // problems reported before the rest are only counted
	PhasesMax         = 1000
	RequestsMax       = 100 // templates in one request mix
	StagesMax         = 100 // stages of one ramping load
	HeadersMax        = 64  // headers of one request
	HeaderBytesMax    = 8 << 10
	BodyBytesMax      = 64 << 10
	PathBytesMax      = 2048
	TargetURLBytesMax = 2048
	NameBytesMax      = 63 // plan, phase and request names
	ExpectStatusMax   = 32
	CriteriaMax       = 200 // thresholds in the sla
	WeightMax         = 10_000
	RatePercentMax    = 1000      // a relative rate, in percent of the peak
	RateRPSMax        = 1_000_000 // any rate, in arrivals per second
	WorkersMax        = 100_000
	UnitsMax          = 64
	AccountsMax       = 100_000_000
	UIDMax            = 1<<53 - 1 // exact in a float64, for JSON readers
	AmountMinorMax    = 1<<53 - 1
	PhaseDurationMax  = 24 * time.Hour
	PlanDurationMax   = 7 * 24 * time.Hour
	TimeoutMax        = 5 * time.Minute
	FaultsMax         = 32  // faults of one phase
	PlanFaultsMax     = 256 // faults of the whole plan
	ProcessesMax      = 64  // local processes a plan names
	LabelsMax         = 16  // labels of one target
	GuardsMax         = 16  // abortWhen guards of the plan or of one phase
)

// Defaults for what a plan leaves out.
const (
	timeoutDefault = 10 * time.Second
	// workersLatencyDefault sizes the default worker bound by Little's law: in flight = rate ×
	// latency, so a phase's default workers sustain its peak rate at up to one second of latency.
	workersLatencyDefault = time.Second
	workersMinDefault     = 16
	uidMinDefault         = 1
	uidMaxDefault         = 10_000
	amountMinorMinDefault = 1
	amountMinorMaxDefault = 10_000
	unitsDefault          = 2
	accountsDefault       = 10_000
)
