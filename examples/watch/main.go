// Command watch prints the configuration under a path, then every change to
// it as it happens, using the config SDK.
//
//	CONFIGD_ADDR=127.0.0.1:7700 go run ./examples/watch app/db
//
// With -snapshot it keeps its copy in a file and starts from it when configd
// is down.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"

	"github.com/configd/configd/sdk/go/config"
)

func main() {
	snapshot := flag.String("snapshot", "", "keep the copy in this `file`, and start from it when configd is down")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: watch [-snapshot file] [path]\n\nconfigd is at $%s (default %s).\n\n", config.EnvAddress, config.DefaultAddress)
		flag.PrintDefaults()
	}
	flag.Parse()
	path := strings.Join(flag.Args(), "/")

	var opts []config.Option
	if *snapshot != "" {
		opts = append(opts, config.WithSnapshot(*snapshot))
	}
	c, err := config.New(context.Background(), opts...)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	w, err := c.Watch(path)
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, os.Interrupt)
		<-stop
		w.Stop()
	}()

	var tree any
	if err := c.Get(path).Scan(&tree); err == nil {
		fmt.Printf("rev %d: %v\n", c.Rev(), tree)
	} else {
		fmt.Printf("rev %d: %s: %v\n", c.Rev(), path, err)
	}
	for {
		u, err := w.NextUpdate()
		if errors.Is(err, config.ErrStopped) {
			return
		}
		if err != nil {
			log.Fatal(err) // configd refused the token (config.ErrUnauthenticated, config.ErrForbidden)
		}
		for _, ch := range u.Changes {
			if ch.Deleted {
				fmt.Printf("rev %d by %s: delete %s\n", u.Rev, u.Actor, ch.Key)
			} else {
				fmt.Printf("rev %d by %s: %s = %s\n", u.Rev, u.Actor, ch.Key, ch.Value.String(""))
			}
		}
	}
}
