// Command bench measures mapper's conversions against the hardware's floor.
//
//	go run ./bench                     # the full run (about 8 minutes on 2 cores)
//	go run ./bench -cases import,export -rounds 1
//
// It builds the mapper binary (bench/bin/mapper), writes synthetic
// checkpoints with mappings/synth (GPT-OSS at gpt-oss-20b's widths and a
// Llama at Llama-3-8B's widths, a few layers, a reduced vocabulary) under
// -workdir (default bench/out/, gitignored), then runs each conversion as a
// subprocess and reports its wall time, peak RSS (the kernel's maxrss of
// the child: file-backed pages of mapped inputs count), CPU time, and the
// bytes read and written. In the same run, on the same files, it measures
// the floor: reading every input byte and writing every output byte with
// plain sequential I/O (1 MiB buffers), fsync included since mapper makes
// its output durable before renaming it into place; the floor without the
// fsync is printed for information. Every figure is the best of -rounds
// (peak RSS: the worst). Generated data is deleted at the end unless -keep.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mapper-dev/mapper/mappings/synth"
)

type options struct {
	workdir      string
	layers       int
	rssLayers    int
	vocab        int
	llamaLayers  int
	llamaVocab   int
	rounds       int
	rssRounds    int
	workers      int
	memory       string
	memoryBytes  int64
	cases        []string
	keep         bool
	mapperBinary string
}

func main() {
	var o options
	var cases string
	flag.StringVar(&o.workdir, "workdir", "bench/out", "where checkpoints and outputs go (deleted at the end unless -keep)")
	flag.IntVar(&o.layers, "layers", 2, "GPT-OSS layers")
	flag.IntVar(&o.rssLayers, "rss-layers", 6, "GPT-OSS layers of the larger checkpoint of the RSS check")
	flag.IntVar(&o.vocab, "vocab", 8192, "GPT-OSS vocabulary")
	flag.IntVar(&o.llamaLayers, "llama-layers", 2, "Llama layers")
	flag.IntVar(&o.llamaVocab, "llama-vocab", 8192, "Llama vocabulary")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds per measurement (best of)")
	flag.IntVar(&o.rssRounds, "rss-rounds", 1, "rounds of the larger RSS-check conversion")
	flag.IntVar(&o.workers, "workers", 2, "mapper --workers (the 1-worker case always uses 1)")
	flag.StringVar(&o.memory, "memory", "1GiB", "mapper --memory")
	flag.StringVar(&cases, "cases", "import,export,llama,rss,workers", "comma-separated cases to run")
	flag.BoolVar(&o.keep, "keep", false, "keep the generated checkpoints (reused by a later run)")
	flag.Parse()
	o.cases = strings.Split(cases, ",")
	var err error
	if o.memoryBytes, err = parseSize(o.memory); err != nil {
		fatal(err)
	}
	if err := run(&o); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "bench: %v\n", err)
	os.Exit(1)
}

func (o *options) has(c string) bool { return slices.Contains(o.cases, c) }

// measurement is one case's best-of-rounds figures.
type measurement struct {
	name        string
	workers     int
	in, out     int64         // bytes
	wall        time.Duration // mapper, best
	cpu         time.Duration // user+sys of the best round
	rss         int64         // bytes, worst round
	floor       time.Duration // read + write + fsync, best
	floorNoSync time.Duration
	floorDirect time.Duration // read + O_DIRECT write + fsync; 0: not available
}

func run(o *options) error {
	start := time.Now()
	if _, err := os.Stat("go.mod"); err != nil {
		return fmt.Errorf("run from the repository root (go run ./bench): %v", err)
	}
	if err := os.MkdirAll(o.workdir, 0o755); err != nil {
		return err
	}
	bin, _ := filepath.Abs("bench/bin/mapper")
	fmt.Printf("building %s\n", bin)
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/mapper").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	o.mapperBinary = bin
	if !o.keep {
		defer os.RemoveAll(o.workdir)
	}
	gptDir := filepath.Join(o.workdir, fmt.Sprintf("gpt-oss-%dl", o.layers))
	var results []measurement
	needGPT := o.has("import") || o.has("export") || o.has("workers") || o.has("rss")
	if needGPT {
		if err := generate(gptDir, synth.GPTOSS20B(o.layers, o.vocab)); err != nil {
			return err
		}
	}
	fastDir := filepath.Join(o.workdir, fmt.Sprintf("gpt-oss-%dl-fast-llm", o.layers))
	if o.has("import") || o.has("export") || o.has("rss") {
		m, err := measure(o, "gpt-oss import (MXFP4 -> Fast-LLM)", gptDir, fastDir, o.workers, o.rounds, o.has("export"))
		if err != nil {
			return err
		}
		results = append(results, m)
	}
	if o.has("workers") {
		m, err := measure(o, "gpt-oss import, 1 worker", gptDir, filepath.Join(o.workdir, "w1"), 1, o.rounds, false)
		if err != nil {
			return err
		}
		results = append(results, m)
	}
	if o.has("export") {
		m, err := measure(o, "gpt-oss export (Fast-LLM -> MXFP4)", fastDir, filepath.Join(o.workdir, "back"), o.workers, o.rounds, false)
		if err != nil {
			return err
		}
		results = append(results, m)
		if o.has("workers") {
			// For information: the export is CPU-bound, the import is not.
			m, err := measure(o, "gpt-oss export, 1 worker", fastDir, filepath.Join(o.workdir, "back"), 1, o.rounds, false)
			if err != nil {
				return err
			}
			results = append(results, m)
		}
	}
	os.RemoveAll(fastDir)
	if o.has("llama") {
		dir := filepath.Join(o.workdir, fmt.Sprintf("llama-%dl", o.llamaLayers))
		if err := generate(dir, synth.Llama3_8B(o.llamaLayers, o.llamaVocab)); err != nil {
			return err
		}
		m, err := measure(o, "llama import (HF -> Fast-LLM)", dir, filepath.Join(o.workdir, "llama-fast-llm"), o.workers, o.rounds, false)
		if err != nil {
			return err
		}
		results = append(results, m)
		if !o.keep {
			os.RemoveAll(dir)
		}
	}
	if o.has("rss") {
		if !o.keep {
			os.RemoveAll(gptDir) // room for the larger checkpoint
		}
		dir := filepath.Join(o.workdir, fmt.Sprintf("gpt-oss-%dl", o.rssLayers))
		if err := generate(dir, synth.GPTOSS20B(o.rssLayers, o.vocab)); err != nil {
			return err
		}
		m, err := measure(o, fmt.Sprintf("gpt-oss import, %d layers", o.rssLayers), dir, filepath.Join(o.workdir, "rss"), o.workers, o.rssRounds, false)
		if err != nil {
			return err
		}
		results = append(results, m)
		if !o.keep {
			os.RemoveAll(dir)
		}
	}
	report(o, results, time.Since(start))
	return nil
}

// generate writes a checkpoint unless a complete one is there (-keep), and
// flushes it so that its write-back does not run under the measurements.
func generate(dir string, a synth.Arch) error {
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err == nil {
		fmt.Printf("reusing %s\n", dir)
		return nil
	}
	os.RemoveAll(dir)
	t := time.Now()
	if err := synth.Generate(dir, a, 1, synth.Options{}); err != nil {
		return err
	}
	syscall.Sync()
	n, _ := dirSize(dir)
	fmt.Printf("generated %s (%s) in %.1fs\n", dir, gb(n), time.Since(t).Seconds())
	return nil
}

// measure runs the floor and mapper alternately, rounds times, and keeps
// the output of the last mapper run when keep is set.
func measure(o *options, name, in, out string, workers, rounds int, keep bool) (measurement, error) {
	m := measurement{name: name, workers: workers}
	var err error
	if m.in, err = dirSize(in); err != nil {
		return m, err
	}
	// Into the page cache first: the input may have just been written
	// past it (mapper writes large tensors with O_DIRECT).
	if _, err := readAll(in); err != nil {
		return m, err
	}
	for r := range rounds {
		os.RemoveAll(out)
		settle()
		res, err := runMapper(o, in, out, workers)
		if err != nil {
			return m, err
		}
		if m.out, err = dirSize(out); err != nil {
			return m, err
		}
		if r == 0 || res.wall < m.wall {
			m.wall, m.cpu = res.wall, res.cpu
		}
		m.rss = max(m.rss, res.rss)
		if !keep || r < rounds-1 {
			os.RemoveAll(out)
		}
		settle()
		ns, err := floor(in, m.out, o.workdir, false)
		if err != nil {
			return m, err
		}
		settle()
		fs, err := floor(in, m.out, o.workdir, true)
		if err != nil {
			return m, err
		}
		if r == 0 || ns < m.floorNoSync {
			m.floorNoSync = ns
		}
		if r == 0 || fs < m.floor {
			m.floor = fs
		}
		settle()
		if d, err := floorDirect(in, m.out, o.workdir); err == nil && (m.floorDirect == 0 || d < m.floorDirect) {
			m.floorDirect = d
		}
		fmt.Printf("  %-38s round %d: mapper %6.2fs (cpu %6.2fs, rss %s)  floor %6.2fs (no fsync %5.2fs)\n",
			name, r+1, res.wall.Seconds(), res.cpu.Seconds(), mib(res.rss), fs.Seconds(), ns.Seconds())
	}
	return m, nil
}

// settle lets the disk finish what deleting the last output queued (ext4
// mounted with discard trims freed blocks) before the next measurement.
func settle() {
	syscall.Sync()
	time.Sleep(time.Second)
}

type runResult struct {
	wall, cpu time.Duration
	rss       int64
}

func runMapper(o *options, in, out string, workers int) (runResult, error) {
	cmd := exec.Command(o.mapperBinary, "apply", "gpt_oss", in, out, "--workers", fmt.Sprint(workers),
		"--memory", o.memory, "--progress", "none")
	if strings.Contains(in, "llama") {
		cmd.Args[2] = "llama"
	}
	cmd.Env = os.Environ()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	t := time.Now()
	if err := cmd.Run(); err != nil {
		return runResult{}, fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, stderr.String())
	}
	wall := time.Since(t)
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return runResult{wall: wall, cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), rss: ru.Maxrss << 10}, nil
}

// readAll reads every file under dir sequentially through a 1 MiB buffer,
// which it returns.
func readAll(dir string) ([]byte, error) {
	var files []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, p)
		}
		return err
	})
	buf := make([]byte, 1<<20)
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		for {
			_, err := f.Read(buf)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				f.Close()
				return nil, err
			}
		}
		f.Close()
	}
	return buf, nil
}

// floorDirect is floor with the write going to the device directly
// (O_DIRECT), for information: the disk's pace without the page cache.
func floorDirect(in string, outBytes int64, workdir string) (time.Duration, error) {
	path := filepath.Join(workdir, "floor.tmp")
	defer os.Remove(path)
	t := time.Now()
	if _, err := readAll(in); err != nil {
		return 0, err
	}
	if err := writeDirect(path, outBytes); err != nil {
		return 0, err
	}
	return time.Since(t), nil
}

// floor reads every file under in sequentially, then writes outBytes to a
// new file in workdir sequentially, fsyncing it when sync is set; the file
// is removed afterwards (an unsynced file's dirty pages are dropped with it,
// so no write-back is left running).
func floor(in string, outBytes int64, workdir string, sync bool) (time.Duration, error) {
	path := filepath.Join(workdir, "floor.tmp")
	defer os.Remove(path)
	t := time.Now()
	buf, err := readAll(in)
	if err != nil {
		return 0, err
	}
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	for left := outBytes; left > 0; {
		n, err := f.Write(buf[:min(left, int64(len(buf)))])
		if err != nil {
			f.Close()
			return 0, err
		}
		left -= int64(n)
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return 0, err
		}
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	return time.Since(t), nil
}

func report(o *options, ms []measurement, total time.Duration) {
	host, _ := os.Hostname()
	fmt.Printf("\n%s, %s, %d cores, %s RAM, --workers %d --memory %s, best of %d (peak RSS: worst)\n",
		time.Now().Format("2006-01-02"), host, runtime.NumCPU(), gb(memTotal()), o.workers, o.memory, o.rounds)
	rows := [][]string{{"conversion", "read", "written", "mapper s", "floor s", "mapper/floor",
		"floor no fsync s", "floor O_DIRECT s", "peak RSS", "mapper cpu s"}}
	for _, m := range ms {
		direct := "n/a"
		if m.floorDirect > 0 {
			direct = fmt.Sprintf("%.2f", m.floorDirect.Seconds())
		}
		rows = append(rows, []string{m.name, gb(m.in), gb(m.out), fmt.Sprintf("%.2f", m.wall.Seconds()),
			fmt.Sprintf("%.2f", m.floor.Seconds()), fmt.Sprintf("%.2fx", m.wall.Seconds()/m.floor.Seconds()),
			fmt.Sprintf("%.2f", m.floorNoSync.Seconds()), direct, mib(m.rss), fmt.Sprintf("%.2f", m.cpu.Seconds())})
	}
	printTable(rows)
	find := func(prefix string) *measurement {
		for i := range ms {
			if strings.HasPrefix(ms[i].name, prefix) {
				return &ms[i]
			}
		}
		return nil
	}
	fmt.Println("\ntargets:")
	check := func(what string, ok bool, got string) {
		mark := "met"
		if !ok {
			mark = "MISSED"
		}
		fmt.Printf("  %-52s %-7s %s\n", what, mark, got)
	}
	ratio := func(m *measurement) float64 { return m.wall.Seconds() / m.floor.Seconds() }
	if m := find("gpt-oss import ("); m != nil {
		check("gpt-oss import <= 2.0x floor", ratio(m) <= 2.0, fmt.Sprintf("%.2fx", ratio(m)))
		check("gpt-oss import peak RSS <= --memory + 100 MiB", m.rss <= o.memoryBytes+100<<20, mib(m.rss))
	}
	if m := find("gpt-oss export"); m != nil {
		check("gpt-oss export <= 3.0x floor", ratio(m) <= 3.0, fmt.Sprintf("%.2fx", ratio(m)))
		check("gpt-oss export peak RSS <= --memory + 100 MiB", m.rss <= o.memoryBytes+100<<20, mib(m.rss))
	}
	if m := find("llama import"); m != nil {
		check("llama import <= 1.5x floor", ratio(m) <= 1.5, fmt.Sprintf("%.2fx", ratio(m)))
		check("llama import peak RSS <= --memory + 100 MiB", m.rss <= o.memoryBytes+100<<20, mib(m.rss))
	}
	if a, b := find("gpt-oss import ("), find(fmt.Sprintf("gpt-oss import, %d layers", o.rssLayers)); a != nil && b != nil {
		r := float64(b.rss) / float64(a.rss)
		check(fmt.Sprintf("peak RSS %d vs %d layers within 10%%", o.rssLayers, o.layers), r <= 1.10,
			fmt.Sprintf("%s vs %s (%+.1f%%)", mib(b.rss), mib(a.rss), 100*(r-1)))
		check(fmt.Sprintf("%d layers peak RSS <= --memory + 100 MiB", o.rssLayers), b.rss <= o.memoryBytes+100<<20, mib(b.rss))
	}
	if a, b := find("gpt-oss import ("), find("gpt-oss import, 1 worker"); a != nil && b != nil {
		s := b.wall.Seconds() / a.wall.Seconds()
		check(fmt.Sprintf("%d workers >= 1.6x faster than 1 (gpt-oss import)", o.workers), s >= 1.6, fmt.Sprintf("%.2fx", s))
	}
	if a, b := find("gpt-oss export ("), find("gpt-oss export, 1 worker"); a != nil && b != nil {
		fmt.Printf("  %-52s %-7s %.2fx\n", fmt.Sprintf("(information) %d workers vs 1 on gpt-oss export", o.workers), "", b.wall.Seconds()/a.wall.Seconds())
	}
	fmt.Printf("\nbench: done in %.0fs\n", total.Seconds())
}

// printTable prints rows as a Markdown table, the first row the header;
// columns after the first are right-aligned.
func printTable(rows [][]string) {
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len(c))
		}
	}
	line := func(r []string) {
		for i, c := range r {
			if i == 0 {
				fmt.Printf("| %-*s ", width[i], c)
			} else {
				fmt.Printf("| %*s ", width[i], c)
			}
		}
		fmt.Println("|")
	}
	line(rows[0])
	for i, w := range width {
		if i == 0 {
			fmt.Printf("|%s", strings.Repeat("-", w+2))
		} else {
			fmt.Printf("|%s:", strings.Repeat("-", w+1))
		}
	}
	fmt.Println("|")
	for _, r := range rows[1:] {
		line(r)
	}
}

func gb(n int64) string  { return fmt.Sprintf("%.2f GB", float64(n)/1e9) }
func mib(n int64) string { return fmt.Sprintf("%d MiB", n>>20) }

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	return n, err
}

// parseSize reads 512MiB, 1GiB, 2GB or a plain byte count.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	for _, u := range units {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			var n int64
			if _, err := fmt.Sscan(v, &n); err != nil {
				return 0, fmt.Errorf("size %q: %v", s, err)
			}
			return n * u.mult, nil
		}
	}
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil {
		return 0, fmt.Errorf("size %q: %v", s, err)
	}
	return n, nil
}
