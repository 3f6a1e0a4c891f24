package main

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// result is one hey run, in the talk's columns.
type result struct {
	Avg, Median, Max, Min, P90, P99 time.Duration
	TPS                             float64
	OK, Failed                      int // responses with status 200, and every other outcome
}

// parseHey reads hey's default report: the summary, the latency
// distribution, and the status code and error distributions.
func parseHey(out string) (result, error) {
	var r result
	secs := func(v string) (time.Duration, error) {
		f, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " secs"), 64)
		return time.Duration(f * float64(time.Second)), err
	}
	var seen int
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		k, v, ok := strings.Cut(line, ":")
		var err error
		switch {
		case ok && k == "Slowest":
			r.Max, err = secs(v)
		case ok && k == "Fastest":
			r.Min, err = secs(v)
		case ok && k == "Average":
			r.Avg, err = secs(v)
		case ok && k == "Requests/sec":
			r.TPS, err = strconv.ParseFloat(strings.TrimSpace(v), 64)
		case strings.HasPrefix(line, "50% in "):
			r.Median, err = secs(strings.TrimPrefix(line, "50% in "))
		case strings.HasPrefix(line, "90% in "):
			r.P90, err = secs(strings.TrimPrefix(line, "90% in "))
		case strings.HasPrefix(line, "99% in "):
			r.P99, err = secs(strings.TrimPrefix(line, "99% in "))
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "responses"):
			// "[200]	65963 responses"
			code, rest, _ := strings.Cut(strings.TrimPrefix(line, "["), "]")
			n, err2 := strconv.Atoi(strings.Fields(rest)[0])
			if err2 != nil {
				return r, fmt.Errorf("hey: status line %q: %w", line, err2)
			}
			if code == "200" {
				r.OK += n
			} else {
				r.Failed += n
			}
			continue
		case strings.HasPrefix(line, "[") && strings.Contains(line, "]\t"):
			// "[12]	Post ...: connection refused" in the error distribution
			n, err2 := strconv.Atoi(strings.TrimPrefix(strings.SplitN(line, "]", 2)[0], "["))
			if err2 == nil {
				r.Failed += n
			}
			continue
		default:
			continue
		}
		if err != nil {
			return r, fmt.Errorf("hey: %q: %w", line, err)
		}
		seen++
	}
	if seen < 7 {
		return r, fmt.Errorf("hey: %d of the 7 figures in its report:\n%s", seen, out)
	}
	return r, nil
}
