package mllp_test

import (
	"bytes"
	"context"
	"fmt"
	"net"

	"github.com/sinewhq/sinew/pkg/mllp"
)

func Example() {
	// A receiver that acknowledges every message (a real one commits it
	// first and builds an HL7 ACK).
	srv, err := mllp.NewServer(mllp.ServerConfig{}, mllp.HandlerFunc(
		func(ctx context.Context, c *mllp.Conn, msg []byte) []byte {
			return []byte("MSH|^~\\&|SINEW\rMSA|AA|" + string(bytes.SplitN(msg, []byte("|"), 3)[1]) + "\r")
		}))
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.Serve(ctx, ln) }()

	c, err := mllp.Dial(context.Background(), mllp.ClientConfig{Addr: ln.Addr().String()})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	reply, err := c.Send(context.Background(), []byte("MSG|42|ADT^A01\r"))
	if err != nil {
		panic(err)
	}
	fmt.Printf("%q\n", reply)

	stop()
	fmt.Println(<-done)
	// Output:
	// "MSH|^~\\&|SINEW\rMSA|AA|42\r"
	// <nil>
}
