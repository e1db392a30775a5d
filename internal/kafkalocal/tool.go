package kafkalocal

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/postflight/postflight/internal/localjvm"
)

// RunTool runs one of Kafka's command-line tools from the jars in dir (the
// directory Fetch returned), e.g. GroupsMain with the arguments
// kafka-consumer-groups.sh takes, and returns its standard output. Its
// standard error (Log4j's default: ERROR and above) is quoted in the error
// when the tool fails. ctx bounds the run; the JVM dies with our process.
func RunTool(ctx context.Context, dir, mainClass string, args ...string) ([]byte, error) {
	java, err := localjvm.Java()
	if err != nil {
		return nil, err
	}
	argv := []string{
		"-Xms16m", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true",
		"-cp", filepath.Join(dir, libsName) + string(filepath.Separator) + "*",
		mainClass,
	}
	cmd := exec.CommandContext(ctx, java, append(argv, args...)...)
	cmd.SysProcAttr = localjvm.SysProcAttr()
	cmd.WaitDelay = 5 * time.Second
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %v: %w: %s", mainClass, args, err, stderr.String())
	}
	return out, nil
}

// limitedBuffer keeps the last 4 KiB written to it.
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.b = append(l.b, p...)
	if len(l.b) > 4096 {
		l.b = l.b[len(l.b)-4096:]
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }
