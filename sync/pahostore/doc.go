// Package pahostore is the client-side message store of lockerd's two
// paho MQTT clients, the locker's link (sync/mqttlink) and the reference
// central (sync/hub).
//
// It is paho's MemoryStore with one difference: it keeps and hands out
// copies of packets, never the packet paho is sending. On every (re)connect
// paho's resume takes the stored QoS 1 publishes and sets their DUP flag;
// with the MemoryStore that flag is written on the very packet that a
// Publish made a moment earlier may still be writing to the network, a
// data race in paho itself (eclipse-paho/paho.mqtt.golang#703, open for
// v1.5.0 and still in v1.5.1). The race detector caught it in lockerhub
// during the broker-chaos test.
package pahostore
