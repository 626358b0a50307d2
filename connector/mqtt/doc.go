// Package mqtt is the MQTT source and sink (type "mqtt"), on
// eclipse/paho.mqtt.golang. The source subscribes to topic filters at QoS 1
// in a persistent session (clean session off, a client id fixed per
// instance) and acknowledges a message to the MQTT broker only after the
// agent has it durable in the output topic, so a crash or a move of the
// instance loses nothing: the broker redelivers what was not acknowledged.
// The sink publishes each record at QoS 1 and returns once the broker
// acknowledged every one.
package mqtt
