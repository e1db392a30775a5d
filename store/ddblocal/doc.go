// Package ddblocal fetches and runs AWS's DynamoDB Local, for `postflight dev`
// and for integration tests.
//
// # Where the jar comes from
//
// AWS publishes DynamoDB Local as a tarball on S3 without a version in its
// URL, so "latest" changes under us. The npm package amplify-dynamodb-simulator
// (pinned at version 2.9.30) ships that tarball's contents under emulator/:
// DynamoDBLocal.jar, DynamoDBLocal_lib/ (the jars and the sqlite4java native
// libraries) and a file named sha256. [Fetch] runs `npm pack` (the registry
// client does the download, its cache and any proxy settings apply; no
// dependency is installed and no script is run), unpacks emulator/ in Go and
// moves it into a cache directory.
//
// # Why two hashes are pinned
//
//   - The emulator/sha256 file holds the sha256 of AWS's original tarball, as
//     AWS published it, not of anything inside the npm package. Checking it
//     against [UpstreamTarballSHA256] proves we got the package build that
//     wraps the DynamoDB Local release we reviewed (1.25.1), but it proves
//     nothing about the bytes we are about to run.
//   - So the jar itself is pinned too: [JarSHA256] is checked after every
//     unpack and on every cache hit, which also catches a cached jar that was
//     truncated or corrupted after it was fetched.
//
// # Processes
//
// [Start] runs the jar under `java` in its own process group and returns once
// the endpoint answers a real ListTables call. [Process.Stop] sends SIGTERM to
// the group, then SIGKILL after a grace period, and reaps the JVM. On Linux the
// JVM is also killed if the Go process dies without calling Stop (for example
// when `go test` times out).
//
// DynamoDB Local listens on every interface (it has no bind-address option);
// it runs with -sharedDb, so every client sees the same tables whatever its
// credentials and region, and with -disableTelemetry.
package ddblocal
