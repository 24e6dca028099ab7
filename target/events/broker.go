package events

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// brokerReadyWait bounds the embedded server's start.
const brokerReadyWait = 10 * time.Second

// ErrBrokerStart is a broker that did not become ready.
var ErrBrokerStart = errors.New("broker did not start")

// BrokerConfig configures the embedded broker.
type BrokerConfig struct {
	// DataDir holds JetStream's files (DATA/broker).
	DataDir string
	// Listen is the client address, "127.0.0.1:0" for a free port.
	Listen string
}

// Broker is a running embedded nats-server with JetStream.
type Broker struct {
	srv *server.Server
}

// StartBroker starts the embedded server: JetStream on file storage with SyncAlways (an
// acknowledged publish is on disk), no signal handlers (its process is the supervisor's).
func StartBroker(cfg BrokerConfig) (*Broker, error) {
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("start broker: listen %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("start broker: port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: "paycell-broker", Host: host, Port: port, NoSigs: true, NoLog: true,
		JetStream: true, StoreDir: cfg.DataDir, SyncAlways: true,
		MaxPayload: 64 << 10,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("start broker: %w", err)
	}
	go srv.Start() // returns once started; Shutdown ends what it runs
	if !srv.ReadyForConnections(brokerReadyWait) {
		srv.Shutdown()
		return nil, fmt.Errorf("start broker on %s: %w", cfg.Listen, ErrBrokerStart)
	}
	return &Broker{srv: srv}, nil
}

// URL is the client URL of the broker.
func (b *Broker) URL() string { return b.srv.ClientURL() }

// Close stops the server and waits for it.
func (b *Broker) Close() {
	b.srv.Shutdown()
	b.srv.WaitForShutdown()
}

// RunBroker serves the broker until ctx is cancelled (the `broker` process role).
func RunBroker(ctx context.Context, cfg BrokerConfig) error {
	b, err := StartBroker(cfg)
	if err != nil {
		return err
	}
	defer b.Close()
	<-ctx.Done()
	return nil
}

// OpenStore starts the embedded server over a stopped broker's files without a listener, for
// an offline read of the stream (the audit); connect with ConnectInProcess. JetStream recovers
// the store as at any start, so the files are not byte for byte as they were.
func OpenStore(dataDir string) (*Broker, error) {
	opts := &server.Options{
		ServerName: "paycell-audit", DontListen: true, NoSigs: true, NoLog: true,
		JetStream: true, StoreDir: dataDir, MaxPayload: 64 << 10,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("open broker store %s: %w", dataDir, err)
	}
	go srv.Start() // returns once started; Close ends what it runs
	if !srv.ReadyForConnections(brokerReadyWait) {
		srv.Shutdown()
		return nil, fmt.Errorf("open broker store %s: %w", dataDir, ErrBrokerStart)
	}
	return &Broker{srv: srv}, nil
}

// ConnectInProcess connects to the server without the network.
func (b *Broker) ConnectInProcess() (*nats.Conn, error) {
	nc, err := nats.Connect("", nats.InProcessServer(b.srv), nats.Name("paycell-audit"))
	if err != nil {
		return nil, fmt.Errorf("connect in process: %w", err)
	}
	return nc, nil
}
