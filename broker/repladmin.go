package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// ensurePartitionedTopic makes the broker at adminURL know the
// partitioned topic base with at least np partitions.
func ensurePartitionedTopic(ctx context.Context, hc *http.Client, adminURL string, base topicName, np int) error {
	path := strings.TrimRight(adminURL, "/") + "/admin/v2/" + base.domain + "/" + base.tenant + "/" + base.namespace + "/" +
		escapeName(base.local) + "/partitions"
	have, err := remotePartitions(ctx, hc, path)
	if err != nil {
		return err
	}
	switch {
	case have >= np:
		return nil
	case have == 0:
		return adminCall(ctx, hc, http.MethodPut, path, strconv.Itoa(np), http.StatusConflict)
	default:
		return adminCall(ctx, hc, http.MethodPost, path, strconv.Itoa(np))
	}
}

func remotePartitions(ctx context.Context, hc *http.Client, path string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode == http.StatusNotFound {
		return 0, nil
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: HTTP %d: %s", path, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	var v struct {
		Partitions int `json:"partitions"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return 0, fmt.Errorf("GET %s: %w", path, err)
	}
	return v.Partitions, nil
}

// adminCall sends a request and accepts a 2xx answer or one of ok.
func adminCall(ctx context.Context, hc *http.Client, method, path, body string, ok ...int) error {
	req, err := http.NewRequestWithContext(ctx, method, path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	for _, c := range ok {
		if resp.StatusCode == c {
			return nil
		}
	}
	return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(msg)))
}

// removeFile removes path; a missing file is not an error.
func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}
