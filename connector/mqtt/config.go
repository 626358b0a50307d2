package mqtt

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/meshfed/meshfed/connector"
)

// Where the MQTT topic of a source record goes: always into the property
// TopicProperty, and into the message key unless key is "none".
const (
	TopicProperty = "mqtt.topic"
	keyTopic      = "topic"
	keyNone       = "none"
)

// common are the settings of both directions.
type common struct {
	broker             string
	clientID           string
	username, password string
	qos                byte
	connectTimeout     time.Duration
	keepAlive          time.Duration
}

type sourceConfig struct {
	common
	topics []string
	key    string
	// maxBatch bounds the records one Read returns.
	maxBatch int
}

type sinkConfig struct {
	common
	// topic is the MQTT topic records are published to; with topicFromKey
	// a record's key is the topic (topic when the key is empty).
	topic        string
	topicFromKey bool
	retain       bool
	timeout      time.Duration
}

func decodeCommon(v *connector.Values) common {
	c := common{
		broker:         v.String("broker", ""),
		clientID:       v.String("clientId", ""),
		username:       v.String("username", ""),
		password:       v.String("password", ""),
		qos:            byte(v.Int("qos", 1, 0, 2)),
		connectTimeout: v.Duration("connectTimeout", 10*time.Second),
		keepAlive:      v.Duration("keepAlive", 30*time.Second),
	}
	switch u, err := url.Parse(c.broker); {
	case c.broker == "":
		v.Fail("broker", "required: the MQTT broker's URL, such as tcp://mqtt.example.com:1883")
	case err != nil || u.Host == "":
		v.Fail("broker", "%q is not a URL such as tcp://host:1883", c.broker)
	case !oneOf(u.Scheme, "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss"):
		v.Fail("broker", "scheme %q is not tcp, mqtt, ssl, tls, mqtts, ws or wss", u.Scheme)
	}
	if len(c.clientID) > 23*8 {
		v.Fail("clientId", "%d characters long, more than %d", len(c.clientID), 23*8)
	}
	return c
}

func decodeSource(values map[string]any) (sourceConfig, error) {
	v := connector.NewValues(values)
	c := sourceConfig{
		common:   decodeCommon(v),
		topics:   v.Strings("topics"),
		key:      v.String("key", keyTopic),
		maxBatch: v.Int("maxBatch", 1000, 1, 100000),
	}
	if len(c.topics) == 0 {
		v.Fail("topics", "required: the MQTT topic filters to subscribe to, such as [sensors/#]")
	}
	for i, t := range c.topics {
		if err := checkFilter(t); err != nil {
			v.Fail(fmt.Sprintf("topics[%d]", i), "%v", err)
		}
	}
	if !oneOf(c.key, keyTopic, keyNone) {
		v.Fail("key", "%q is not topic or none", c.key)
	}
	return c, v.Err()
}

func decodeSink(values map[string]any) (sinkConfig, error) {
	v := connector.NewValues(values)
	c := sinkConfig{
		common:       decodeCommon(v),
		topic:        v.String("topic", ""),
		topicFromKey: v.Bool("topicFromKey", false),
		retain:       v.Bool("retain", false),
		timeout:      v.Duration("timeout", 30*time.Second),
	}
	switch {
	case c.topic == "" && !c.topicFromKey:
		v.Fail("topic", "required: the MQTT topic to publish to (or set topicFromKey)")
	case c.topic != "" && strings.ContainsAny(c.topic, "+#"):
		v.Fail("topic", "%q holds a wildcard; publish to a topic name", c.topic)
	}
	return c, v.Err()
}

// checkFilter checks an MQTT topic filter: '#' only as the last level,
// '+' only as a whole level.
func checkFilter(f string) error {
	if f == "" {
		return fmt.Errorf("empty topic filter")
	}
	if strings.ContainsRune(f, 0) {
		return fmt.Errorf("topic filter %q contains a NUL character", f)
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		switch {
		case strings.Contains(l, "#") && (l != "#" || i != len(levels)-1):
			return fmt.Errorf("topic filter %q: '#' must be the whole last level", f)
		case strings.Contains(l, "+") && l != "+":
			return fmt.Errorf("topic filter %q: '+' must be a whole level", f)
		}
	}
	return nil
}

func oneOf(s string, allowed ...string) bool {
	for _, a := range allowed {
		if s == a {
			return true
		}
	}
	return false
}
