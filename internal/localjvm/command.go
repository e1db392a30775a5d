package localjvm

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// outputQuoted is how much of a failed command's output Run quotes.
const outputQuoted = 2048

// Run runs cmd, a short-lived command made with exec.CommandContext (npm,
// mvn, a Kafka tool), in its own process group that dies with our process
// ([SysProcAttr]); when ctx ends the whole group is killed, helpers
// included. A failure's error quotes the end of the command's combined
// output.
func Run(cmd *exec.Cmd) error {
	cmd.SysProcAttr = SysProcAttr()
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		b := out.Bytes()
		if len(b) > outputQuoted {
			b = b[len(b)-outputQuoted:]
		}
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(b)))
	}
	return nil
}
