package federation

import (
	"encoding/json"
	"testing"
)

// FuzzDrillReportJSON decodes arbitrary report files (drill show reads
// them from disk): an error or a report that encodes again, never a panic.
func FuzzDrillReportJSON(f *testing.F) {
	for _, seed := range []string{
		`{"id":"x","cluster":"a","timeline":{"started":"2026-11-26T12:00:00Z","cordoned":"2026-11-26T12:00:01Z","uncordoned":"2026-11-26T12:00:11Z"}}`,
		`{"id":"x","mode":"crash","timeline":{"failed":"2026-11-26T12:00:01Z","fallbackOutput":"2026-11-26T12:00:03Z"},"unreplicated":3,"stranded":{"produced":3}}`,
		`{"timeline":null}`, `{"timeline":{"cordoned":1}}`, `[]`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r DrillReport
		if json.Unmarshal(data, &r) != nil {
			return
		}
		r.Finalize()
		if _, err := json.Marshal(&r); err != nil {
			t.Fatalf("decoded report does not encode: %v", err)
		}
	})
}
