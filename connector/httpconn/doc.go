// Package httpconn is the HTTP source and sink (type "http"). The source
// is a webhook endpoint the agent serves: each POST is one record, answered
// 200 only once the record is durable in the output topic (a client that
// gets anything else may send again). The sink POSTs records to a URL,
// retrying with exponential backoff.
package httpconn
