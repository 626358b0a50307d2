package mqtt

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/meshfed/meshfed/connector"
	"github.com/meshfed/meshfed/internal/testkit"
)

func TestValidate(t *testing.T) {
	src, _ := connector.LookupSource("mqtt")
	sink, _ := connector.LookupSink("mqtt")
	tests := []struct {
		name     string
		validate func(map[string]any) error
		config   string
		want     []string // "key: reason" fragments; none: valid
	}{
		{"source ok", src.Validate, `{"broker":"tcp://h:1883","topics":["a/#","b/+/c"],"qos":1,"key":"none","maxBatch":500}`, nil},
		{"source one topic", src.Validate, `{"broker":"mqtts://h:8883","topics":"a/b"}`, nil},
		{"no broker", src.Validate, `{"topics":["a"]}`, []string{"broker: required"}},
		{"bad scheme", src.Validate, `{"broker":"http://h","topics":["a"]}`, []string{`broker: scheme "http"`}},
		{"no topics", src.Validate, `{"broker":"tcp://h:1"}`, []string{"topics: required"}},
		{"bad filter", src.Validate, `{"broker":"tcp://h:1","topics":["a/#/b","x+"]}`, []string{"topics[0]: topic filter", "topics[1]: topic filter"}},
		{"bad qos", src.Validate, `{"broker":"tcp://h:1","topics":["a"],"qos":3}`, []string{"qos: must be between 0 and 2"}},
		{"typo", src.Validate, `{"broker":"tcp://h:1","topics":["a"],"topic":"a"}`, []string{"topic: unknown setting"}},
		{"wrong type", src.Validate, `{"broker":"tcp://h:1","topics":["a"],"maxBatch":"many"}`, []string{"maxBatch: must be a number"}},
		{"sink ok", sink.Validate, `{"broker":"tcp://h:1","topic":"out/x","retain":true}`, nil},
		{"sink wildcard", sink.Validate, `{"broker":"tcp://h:1","topic":"out/#"}`, []string{"topic: \"out/#\" holds a wildcard"}},
		{"sink no topic", sink.Validate, `{"broker":"tcp://h:1"}`, []string{"topic: required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testkit.WantConfigErrors(t, tt.validate(testkit.ConnectorValues(t, tt.config)), tt.want...)
		})
	}
}

// FuzzConfig feeds arbitrary JSON configs to both decoders: they must
// never panic, and a config they accept must name a broker and, for a
// source, topic filters.
func FuzzConfig(f *testing.F) {
	f.Add(`{"broker":"tcp://h:1883","topics":["a/#"],"qos":1}`)
	f.Add(`{"broker":"ws://h","topics":"+/+/#","key":"topic","clientId":"x","keepAlive":"5s"}`)
	f.Add(`{"broker":"tcp://h:1","topic":"t","topicFromKey":true,"timeout":"1s"}`)
	f.Add(`{"broker":1,"topics":[1,null,{}],"qos":1.5,"maxBatch":-1}`)
	f.Fuzz(func(t *testing.T, js string) {
		var m map[string]any
		if json.Unmarshal([]byte(js), &m) != nil {
			return
		}
		if c, err := decodeSource(m); err == nil && (c.broker == "" || len(c.topics) == 0 || c.maxBatch < 1) {
			t.Fatalf("accepted a source config without broker or topics: %q", js)
		}
		if c, err := decodeSink(m); err == nil && (c.broker == "" || c.topic == "" && !c.topicFromKey) {
			t.Fatalf("accepted a sink config without broker or topic: %q", js)
		}
	})
}

// testConfig is the config of connector devices of mesh iot, its values
// the JSON js.
func testConfig(t testing.TB, js string) connector.Config {
	return testkit.ConnectorConfig("mqtt", "iot", "devices", testkit.ConnectorValues(t, js))
}

// publisher connects a device that publishes at QoS 1.
func publisher(t testing.TB, broker string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID(fmt.Sprintf("device-%d", time.Now().UnixNano())))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect device: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

func publish(t testing.TB, c paho.Client, topic string, from, n int) {
	t.Helper()
	toks := make([]paho.Token, 0, n)
	for i := from; i < from+n; i++ {
		toks = append(toks, c.Publish(topic, 1, false, fmt.Sprintf("m-%d", i)))
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
}

// openTestSource opens a source of cfg; the test fails if it cannot.
func openTestSource(t *testing.T, cfg connector.Config) connector.Source {
	t.Helper()
	s, err := openSource(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// commitAndClose commits s up to position and closes it, as an instance
// that stops after its outputs up to there were durable.
func commitAndClose(t *testing.T, s connector.Source, position string) {
	t.Helper()
	if err := s.Commit(context.Background(), position); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// readUntil reads from s until it has n records or the deadline passes.
func readUntil(t *testing.T, s connector.Source, n int) []connector.SourceRecord {
	t.Helper()
	var got []connector.SourceRecord
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for len(got) < n {
		recs, err := s.Read(ctx)
		if err != nil {
			t.Fatalf("read after %d of %d records: %v", len(got), n, err)
		}
		got = append(got, recs...)
	}
	return got
}

// A restart of the source loses nothing at QoS 1: what was read but not
// committed, and what devices published while it was away, arrive in the
// next session of the same client id; what was committed does not.
func TestSourceRestartLosesNothing(t *testing.T) {
	broker := testkit.Mosquitto(t)
	cfg := testConfig(t, fmt.Sprintf(`{"broker":%q,"topics":["sensors/#"]}`, broker))
	s := openTestSource(t, cfg)
	dev := publisher(t, broker)
	publish(t, dev, "sensors/kitchen/temp", 0, 100)
	got := readUntil(t, s, 100)
	if got[0].Key != "sensors/kitchen/temp" || got[0].Properties[TopicProperty] != "sensors/kitchen/temp" || string(got[0].Value) != "m-0" {
		t.Fatalf("first record %+v", got[0])
	}
	commitAndClose(t, s, got[59].Position)        // m-0 .. m-59 are durable
	publish(t, dev, "sensors/hall/temp", 100, 50) // while the source is away

	s = openTestSource(t, cfg)
	defer s.Close()
	again := readUntil(t, s, 90)
	seen := map[string]bool{}
	for _, r := range again {
		seen[string(r.Value)] = true
	}
	for i := 0; i < 150; i++ {
		if want := i >= 60; seen[fmt.Sprintf("m-%d", i)] != want {
			t.Errorf("m-%d delivered again: %v, want %v", i, !want, want)
		}
	}
}

func TestSinkPublishes(t *testing.T) {
	broker := testkit.Mosquitto(t)
	var mu sync.Mutex
	got := map[string]string{}
	sub := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID("reader"))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer sub.Disconnect(0)
	if tok := sub.Subscribe("out/#", 1, func(_ paho.Client, m paho.Message) {
		mu.Lock()
		got[string(m.Payload())] = m.Topic()
		mu.Unlock()
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	s, err := openSink(context.Background(), testConfig(t, fmt.Sprintf(`{"broker":%q,"topic":"out/all","topicFromKey":true}`, broker)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	batch := []connector.SinkRecord{{Record: connector.Record{Value: []byte("a")}}, {Record: connector.Record{Key: "out/keyed", Value: []byte("b")}}}
	if err := s.Write(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "both records published", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return got["a"] == "out/all" && got["b"] == "out/keyed"
	})
}
