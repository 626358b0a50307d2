package drill

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/meshfed/meshfed/federation"
)

// ErrNotFound is returned by Load for an id with no report.
var ErrNotFound = errors.New("no such drill report")

// Reports are kept as one JSON file per drill, <dir>/<id>.json, written to
// a temporary file and renamed into place so a reader never sees half a
// report.

// DefaultDir is where reports are kept unless told otherwise:
// $HOME/.meshfed/drills.
func DefaultDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(".meshfed", "drills")
	}
	return filepath.Join(home, ".meshfed", "drills")
}

func validID(id string) bool {
	return id != "" && !strings.ContainsAny(id, `/\`) && id != "." && id != ".."
}

// Save writes the report to dir and returns its path.
func Save(dir string, r *federation.DrillReport) (string, error) {
	if !validID(r.ID) {
		return "", fmt.Errorf("drill report id %q is not a file name", r.ID)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create reports dir: %w", err)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode drill report: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".report-*")
	if err != nil {
		return "", fmt.Errorf("write drill report: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write drill report: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("write drill report: %w", err)
	}
	path := filepath.Join(dir, r.ID+".json")
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("write drill report: %w", err)
	}
	return path, nil
}

// Load reads the report of one drill.
func Load(dir, id string) (*federation.DrillReport, error) {
	if !validID(id) {
		return nil, fmt.Errorf("drill %q: %w", id, ErrNotFound)
	}
	data, err := os.ReadFile(filepath.Join(dir, id+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("drill %q in %s: %w", id, dir, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read drill report: %w", err)
	}
	var r federation.DrillReport
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("drill report %s: %w", id, err)
	}
	return &r, nil
}

// List reads every report in dir, oldest first (ids sort by time). A
// missing dir holds no reports.
func List(dir string) ([]*federation.DrillReport, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list drill reports: %w", err)
	}
	var out []*federation.DrillReport
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".json") {
			continue
		}
		r, err := Load(dir, strings.TrimSuffix(name, ".json"))
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := began(out[i]), began(out[j])
		if !a.Equal(b) {
			return a.Before(b)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// began is when a drill started: its stream, else its cordon.
func began(r *federation.DrillReport) time.Time {
	if !r.Timeline.Started.IsZero() {
		return r.Timeline.Started
	}
	return r.Timeline.Failed
}
