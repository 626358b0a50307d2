package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

// docSource is where one applied document came from.
type docSource struct {
	file string
	doc  int // counting from 1 within the file
}

// docSet is the objects of every -f file, in the order they are sent: by
// kind in dependency order (clusters, tenants, namespaces, grants, meshes),
// file order within a kind, so a document may refer to one listed after it.
type docSet struct {
	objs []*meshfedv1.Object
	from []docSource
}

// manifestExts are the file names a directory is read for.
var manifestExts = []string{".yaml", ".yml", ".json"}

// readDocSet reads the -f arguments with read: files, directories (their
// .yaml, .yml and .json files in name order; with recursive, their
// subdirectories' too) and - for standard input.
func readDocSet(paths []string, recursive bool, read func(file string) ([]*meshfedv1.Object, error)) (*docSet, error) {
	var files []string
	for _, p := range paths {
		if p == "-" {
			files = append(files, p)
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("-f %s: %w", p, err)
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		found, err := manifestFiles(p, recursive)
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			hint := ""
			if !recursive {
				hint = " (-R reads its subdirectories too)"
			}
			return nil, fmt.Errorf("-f %s: no %s files in the directory%s", p, strings.Join(manifestExts, ", "), hint)
		}
		files = append(files, found...)
	}
	set := &docSet{}
	for _, f := range files {
		objs, err := read(f)
		if err != nil {
			return nil, err
		}
		for i, o := range objs {
			set.objs = append(set.objs, o)
			set.from = append(set.from, docSource{file: displayFile(f), doc: i + 1})
		}
	}
	set.sortByDependency()
	return set, nil
}

// manifestFiles lists a directory's manifest files in name order.
func manifestFiles(dir string, recursive bool) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("-f %s: %w", dir, err)
		}
		if d.IsDir() {
			if path != dir && !recursive {
				return filepath.SkipDir
			}
			return nil
		}
		if slices.Contains(manifestExts, strings.ToLower(filepath.Ext(path))) {
			out = append(out, path)
		}
		return nil
	})
	return out, err
}

// kindRank orders kinds so that what a document refers to is written
// first: the order of objects.Kinds.
func kindRank(o *meshfedv1.Object) int {
	k := objects.KindOf(o)
	for i, kk := range objects.Kinds {
		if kk == k {
			return i
		}
	}
	return len(objects.Kinds)
}

func (s *docSet) sortByDependency() {
	idx := make([]int, len(s.objs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return kindRank(s.objs[idx[a]]) < kindRank(s.objs[idx[b]]) })
	objs, from := make([]*meshfedv1.Object, len(idx)), make([]docSource, len(idx))
	for i, j := range idx {
		objs[i], from[i] = s.objs[j], s.from[j]
	}
	s.objs, s.from = objs, from
}

// docPrefix matches the "doc N: " the server puts before a line about the
// Nth object it was sent.
var docPrefix = regexp.MustCompile(`^doc (\d+): `)

// locate rewrites a server's message so each line names the file and
// document the user wrote ("FILE: doc M: ..."), not the position in the
// request. A line about no document is prefixed with the file when only one
// was applied.
func (s *docSet) locate(msg string) string {
	files := map[string]bool{}
	for _, f := range s.from {
		files[f.file] = true
	}
	lines := strings.Split(msg, "\n")
	for i, l := range lines {
		if m := docPrefix.FindStringSubmatch(l); m != nil {
			if n, err := strconv.Atoi(m[1]); err == nil && n >= 1 && n <= len(s.from) {
				src := s.from[n-1]
				lines[i] = fmt.Sprintf("%s: doc %d: %s", src.file, src.doc, l[len(m[0]):])
				continue
			}
		}
		if len(files) == 1 {
			lines[i] = s.from[0].file + ": " + l
		}
	}
	return strings.Join(lines, "\n")
}
