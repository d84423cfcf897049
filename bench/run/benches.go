package main

// Bench is one benchmark bench/run drives: a Go program under bench/ (or a
// script that drives it against a real server) that writes its figures with
// -json.
type Bench struct {
	Key, Title string
	// Dir is the benchmark's package (bench/ingest); when it is missing the
	// benchmark is reported as not run.
	Dir string
	// Script, when set, is run instead of Dir's program (it passes its
	// arguments on to the program).
	Script string
	// Needs are flags the program must have besides -json: a flag another
	// branch has not added yet makes the benchmark "not run", not a failure.
	Needs []string
	// Args of a full run, of -quick, and of the warm-up run (small sizes:
	// it builds, starts peers and fills caches, and is discarded).
	Full, Quick, Warm []string
	// Reps are the measured repetitions of a full run (-quick: 1).
	Reps int
	// FullOnly benchmarks only chart more points; -quick skips them.
	FullOnly bool
	// Series names its points on the charts (default Key).
	Series  string
	Ratios  []Expr
	Targets []Target
}

// Names of the rows the benchmarks print (and write with -json).
const (
	ingest4        = "LAN/ferry send --streams 4"
	ingest1        = "LAN/ferry send --streams 1"
	pinned4        = "PINNED/ferry send --streams 4 -> ferry serve"
	pinned1        = "PINNED/ferry send --streams 1 -> ferry serve"
	pinnedHashing  = "PINNED/curl PUT -> same server hashing SHA-256 on arrival"
	pinnedTusJS    = "PINNED/stock tusd + tus-js-client (Node, 1 stream)"
	pinnedDisk     = "~disk alone"                 // the same bytes written O_DIRECT from huge pages + fsync: the durable floor
	pinnedFloor    = "~client hashing as it sends" // both sides hash, nothing stored: a verified transfer's floor
	ingestCeiling  = "LAN/curl PUT -> Go io.Copy file server (ceiling)"
	ingestTusJS    = "~tus-js-client" // stock tusd + tus-js-client
	ingestWAN1     = "WAN/ferry send --streams 1"
	ingestWAN8     = "WAN/ferry send --streams 8"
	transferFerry  = "lan/ferry s3"
	transferPut    = "lan/single presigned PUT (ceiling)"
	transferTM     = "lan/aws transfermanager 16MiB x 8"
	transferRclone = "lan/rclone copyto (best flags)"
	wanFerry       = "wan/ferry s3"
	wanOne         = "wan/one stream (presigned PUT)"
	wanRcloneDef   = "wan/rclone copyto (default flags)"
	wanTM          = "wan/aws transfermanager 16MiB x 8"
)

// benches is every benchmark, in the order they run. Sizes follow the
// issues' numbers; a full run fits in about 30 minutes on 2 cores.
var benches = []Bench{
	{
		Key: "ingest-pinned", Title: "Ingest, sender and server pinned to one core each (bench/ingest -pin)",
		Dir: "bench/ingest", Script: "bench/ingest/run.sh", Needs: []string{"pin"},
		Full:  []string{"-pin", "-size", "2147483648", "-rounds", "1", "-wan=false"},
		Quick: []string{"-pin", "-size", "268435456", "-rounds", "1", "-wan=false", "-tusjs=true"},
		Warm:  []string{"-pin", "-size", "67108864", "-rounds", "1", "-wan=false", "-tusjs=false"},
		Reps:  3,
		// The targets compare the pinned rows with each other (the run also prints LAN rows, whose
		// senders are not pinned).
		// The last ratio says how near 1.2x stock tusd a transfer whose two sides hash every byte
		// (as issue 12 §1 asks) can come on one core each, storing nothing.
		Ratios: []Expr{{pinned4, pinnedHashing}, {pinned4, pinnedTusJS}, {pinned4, pinned1}, {pinned4, pinnedDisk}, {pinnedFloor, pinnedTusJS}},
		Targets: []Target{
			{Expr{pinned4, pinnedHashing}, ">=", 0.9, "issue 12 §1"},
			{Expr{pinned4, pinnedTusJS}, ">=", 1.2, "issue 12 §1"},
			{Expr{pinned4, pinned1}, ">=", 1.0, "issue 12 §1"},
		},
	},
	{
		Key: "ingest", Title: "Ingest over loopback, unpinned (bench/ingest/run.sh)",
		Dir: "bench/ingest", Script: "bench/ingest/run.sh",
		Full:   []string{"-size", "2147483648", "-rounds", "1", "-wan=false"},
		Quick:  []string{"-size", "268435456", "-rounds", "1", "-wan=false"},
		Warm:   []string{"-size", "67108864", "-rounds", "1", "-wan=false", "-tusjs=false"},
		Reps:   3,
		Ratios: []Expr{{ingest4, ingestCeiling}, {ingest4, ingestTusJS}, {ingest4, ingest1}},
		Targets: []Target{
			{Expr{ingest4, ingest1}, ">=", 1.0, "issue 12 §1"},
		},
	},
	{
		Key: "ingest-wan", Title: "Ingest over a WAN (50 ms each way, 20 MB/s per connection; bench/ingest/run.sh)",
		Dir: "bench/ingest", Script: "bench/ingest/run.sh",
		Full:    []string{"-lan=false", "-wan-size", "536870912"},
		Quick:   []string{"-lan=false", "-wan-size", "134217728"},
		Warm:    []string{"-lan=false", "-wan-size", "16777216"},
		Reps:    2,
		Ratios:  []Expr{{ingestWAN8, ingestWAN1}},
		Targets: []Target{{Expr{ingestWAN8, ingestWAN1}, ">=", 7, "issue 12 §1"}},
	},
	{
		Key: "transfer", Title: "Delivery to S3 over loopback (bench/transfer, Versity)",
		Dir:    "bench/transfer",
		Full:   []string{"-links", "lan", "-size", "2GiB", "-contenders", "put,ferry,tm,rclone"},
		Quick:  []string{"-links", "lan", "-size", "256MiB", "-contenders", "put,ferry,tm,rclone"},
		Warm:   []string{"-links", "lan", "-size", "64MiB", "-contenders", "put,ferry,tm,rclone"},
		Reps:   3,
		Ratios: []Expr{{transferFerry, transferPut}, {transferFerry, transferRclone}, {transferFerry, transferTM}},
		// "Met; keep it": not below 90% of the ratios measured when issue 12
		// was filed (0.91x, 2.21x, 1.12x), RSS within the WAN run's budget.
		Targets: []Target{
			{Expr{transferFerry, transferPut}, ">=", 0.82, "issue 12: keep 0.91x"},
			{Expr{transferFerry, transferRclone}, ">=", 1.99, "issue 12: keep 2.21x"},
			{Expr{transferFerry, transferTM}, ">=", 1.01, "issue 12: keep 1.12x"},
			{Expr{Num: transferFerry + " RSS"}, "<=", 64, "issue 12: keep 32 MiB"},
		},
	},
	{
		Key: "transfer-wan", Title: "Delivery to S3 over a WAN (25 ms each way, 20 MB/s per connection; bench/transfer, Versity)",
		Dir:    "bench/transfer",
		Full:   []string{"-links", "wan", "-wan-size", "1GiB", "-wan-contenders", "put,ferry,rclone-default,tm"},
		Quick:  []string{"-links", "wan", "-wan-size", "256MiB", "-wan-contenders", "put,ferry,rclone-default,tm"},
		Warm:   []string{"-links", "wan", "-wan-size", "16MiB", "-wan-contenders", "ferry"},
		Reps:   2,
		Ratios: []Expr{{wanFerry, wanOne}, {wanFerry, wanRcloneDef}, {wanFerry, wanTM}},
		Targets: []Target{
			{Expr{wanFerry, wanOne}, ">=", 6, "issue 12 §4"},
			{Expr{wanFerry, wanRcloneDef}, ">=", 1.5, "issue 12 §4"},
			{Expr{Num: wanFerry + " RSS"}, "<=", 64, "issue 12 §4"},
		},
	},
	{
		Key: "transfer-wan-streams", Title: "Delivery to S3 over the WAN by parts in flight (chart only)",
		Dir: "bench/transfer", FullOnly: true, Series: "transfer-wan",
		Full: []string{"-links", "wan", "-wan-size", "256MiB", "-wan-contenders", "ferry:1,ferry:2,ferry:4,ferry:16"},
		Warm: []string{"-links", "wan", "-wan-size", "16MiB", "-wan-contenders", "ferry:2"},
		Reps: 1,
	},
	{
		Key: "delivery", Title: "Delivery into iconik: API-bound throughput and pipelining (bench/delivery)",
		Dir:    "bench/delivery",
		Full:   []string{"-files", "1000"},
		Quick:  []string{"-files", "100"},
		Warm:   []string{"-files", "10", "-pipeline-files", "5", "-pipeline-every", "10ms"},
		Reps:   1,
		Ratios: []Expr{{"throughput/total", "throughput/bound"}},
		Targets: []Target{
			{Expr{Num: "throughput/calls per file"}, "<=", 7.5, "issue 12 §3"},
			{Expr{"throughput/total", "throughput/bound"}, "<=", 1.05, "issue 12 §3"},
			{Expr{Num: "pipelining/after last byte"}, "<=", 2, "issue 12 §3"},
		},
	},
	{
		Key: "delivery-100", Title: "Delivery into iconik, 100 files (chart only)",
		Dir: "bench/delivery", FullOnly: true,
		Full: []string{"-files", "100", "-pipeline-files", "5", "-pipeline-every", "10ms"},
		Warm: []string{"-files", "10", "-pipeline-files", "5", "-pipeline-every", "10ms"},
		Reps: 1,
	},
	{
		Key: "delivery-300", Title: "Delivery into iconik, 300 files (chart only)",
		Dir: "bench/delivery", FullOnly: true,
		Full: []string{"-files", "300", "-pipeline-files", "5", "-pipeline-every", "10ms"},
		Warm: []string{"-files", "10", "-pipeline-files", "5", "-pipeline-every", "10ms"},
		Reps: 1,
	},
	{
		Key: "serve", Title: "Server memory while receiving one large file (bench/serve/run.sh)",
		Dir: "bench/serve", Script: "bench/serve/run.sh",
		Full:   []string{"-size", "10GiB", "-ref-size", "2GiB"},
		Quick:  []string{"-size", "1GiB", "-ref-size", "256MiB"},
		Warm:   []string{"-size", "64MiB", "-ref-size", "64MiB"},
		Reps:   1,
		Ratios: []Expr{{"upload", "direct write (reference)"}},
		Targets: []Target{
			{Expr{Num: "VmHWM after zip download"}, "<=", 200, "issue 3"},
		},
	},
	{
		Key: "portal", Title: "Browser upload through the portal page (bench/portal, headless Chromium)",
		Dir:   "bench/portal",
		Full:  []string{"-lan-size", "1GiB", "-wan-size", "512MiB", "-rounds", "3"},
		Quick: []string{"-lan-size", "128MiB", "-wan-size", "64MiB", "-rounds", "1"},
		Warm:  []string{"-lan-size", "16MiB", "-wan-size", "16MiB", "-rounds", "1"},
		Reps:  1,
		Ratios: []Expr{
			{"LAN/ferry portal page + ferry serve", "LAN/plain Uppy 6 + stock tusd (reference)"},
			{"WAN/ferry portal page (parallel partials)", "WAN/ferry portal page, one stream per file (reference)"},
		},
		Targets: []Target{
			{Expr{"LAN/ferry portal page + ferry serve", "LAN/plain Uppy 6 + stock tusd (reference)"}, ">=", 1.0, "bench/portal"},
			{Expr{"WAN/ferry portal page (parallel partials)", "WAN/ferry portal page, one stream per file (reference)"}, ">=", 4, "bench/portal"},
		},
	},
	{
		// One replica against two behind a round-robin proxy (PostgreSQL and
		// one Versity bucket), and one big upload to the S3 store against
		// local disk. Issue 13 names no target: the ratios are reported.
		Key: "scale", Title: "Scale-out: one replica against two, S3 store against local disk (bench/scale)",
		Dir:   "bench/scale",
		Full:  []string{"-files", "64", "-file-size", "8388608", "-big", "1073741824"},
		Quick: []string{"-files", "16", "-file-size", "4194304", "-big", "268435456"},
		Reps:  1,
		Ratios: []Expr{
			{"ingest/2 replica(s)", "ingest/1 replica(s)"},
			{"delivery/2 replica(s)", "delivery/1 replica(s)"},
			{"big upload/S3 store (Versity)", "big upload/local disk"},
		},
	},
}
