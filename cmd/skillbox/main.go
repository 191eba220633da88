// Command skillbox runs AI-agent skills in a sandbox. See the README.
package main

import (
	"os"

	"github.com/skillbox-dev/skillbox/internal/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
