// Package allinone runs Garrison on one machine with no set-up: a
// throwaway local PostgreSQL cluster and local file storage under one
// directory, and a first admin whose credentials are printed and kept. It
// is what `make run` starts; it is for evaluation and development, not
// production (see docs/).
package allinone

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/garrison-chat/garrison/internal/pgcluster"
	"github.com/garrison-chat/garrison/server/internal/config"
	"github.com/garrison-chat/garrison/server/internal/daemon"
)

// Options configure a run.
type Options struct {
	// Dir holds everything the run creates (default ./.run).
	Dir string
	// ConfigPath is an optional config.json; MM_* variables apply on top.
	ConfigPath string
	// Getenv reads the environment.
	Getenv func(string) string
	// Stdout receives the URL and credentials.
	Stdout io.Writer
	// Logger receives the server's logs.
	Logger *slog.Logger
	// Ready, if set, is called once the server serves.
	Ready func(url string)
}

// Defaults for the all-in-one server; an MM_* variable set by the user
// wins over each of them.
const (
	listenAddress = "127.0.0.1:8065"
	adminUsername = "admin"
	adminEmail    = "admin@garrison.localhost"
	databaseName  = "garrison"
)

// Credentials are the first admin's login.
type Credentials struct {
	URL, Username, Password string
}

// Run starts the local database (unless MM_SQLSETTINGS_DATASOURCE points
// elsewhere) and the server, prints the credentials, and serves until ctx
// ends; then it stops everything it started.
func Run(ctx context.Context, o Options) (err error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("allinone: %w", err)
	}
	// The server refuses a missing file directory (it could be an
	// unmounted NAS); the all-in-one default lives under dir.
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o750); err != nil {
		return fmt.Errorf("allinone: %w", err)
	}
	defaults := map[string]string{
		"MM_SERVICESETTINGS_LISTENADDRESS": listenAddress,
		"MM_FILESETTINGS_DIRECTORY":        filepath.Join(dir, "data"),
		"MM_FILESETTINGS_DRIVERNAME":       "local",
	}
	ownSiteURL := o.Getenv("MM_SERVICESETTINGS_SITEURL") == ""
	if ownSiteURL {
		addr := o.Getenv("MM_SERVICESETTINGS_LISTENADDRESS")
		if addr == "" {
			addr = listenAddress
		}
		defaults["MM_SERVICESETTINGS_SITEURL"] = "http://" + addr
	}

	var cluster *pgcluster.Cluster
	if o.Getenv("MM_SQLSETTINGS_DATASOURCE") == "" {
		cluster, err = startDatabase(ctx, dir, o.Logger)
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
			defer cancel()
			if serr := cluster.Stop(sctx); serr != nil {
				err = errors.Join(err, serr)
			}
		}()
		defaults["MM_SQLSETTINGS_DATASOURCE"] = cluster.DSN(databaseName)
	}
	getenv := func(k string) string {
		if v := o.Getenv(k); v != "" {
			return v
		}
		return defaults[k]
	}
	cfg, err := config.Load(o.ConfigPath, getenv, o.Logger)
	if err != nil {
		return err
	}

	d := daemon.New(cfg, o.Logger)
	if err := d.Start(ctx); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		err = errors.Join(err, d.Stop(sctx))
	}()

	url := cfg.ServiceSettings.SiteURL
	if ownSiteURL {
		// The address actually bound (a ":0" listen address picks a port).
		url = "http://" + d.Addr().String()
	}
	creds, err := ensureAdmin(ctx, d, dir, url, cfg.PasswordSettings.MinimumLength)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Stdout, "URL: %s\nUsername: %s\nPassword: %s\n", creds.URL, creds.Username, creds.Password)
	if o.Ready != nil {
		o.Ready(creds.URL)
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-d.Serving():
		return err
	}
}

// startDatabase starts (or reuses) the cluster under dir/postgres and
// makes sure the database exists. As root, when the postgres user cannot
// reach dir (a checkout under a mode-700 home), the cluster lives under
// /var/tmp instead, in a directory named after dir so reruns find it.
func startDatabase(ctx context.Context, dir string, logger *slog.Logger) (*pgcluster.Cluster, error) {
	sum := sha256.Sum256([]byte(dir))
	c, err := pgcluster.Start(ctx, pgcluster.Options{
		Dir:         filepath.Join(dir, "postgres"),
		FallbackDir: filepath.Join("/var/tmp", "garrison-run-"+hex.EncodeToString(sum[:6]), "postgres"),
		Fsync:       true,
		Logger:      logger,
	})
	if err != nil {
		if errors.Is(err, pgcluster.ErrNotFound) {
			return nil, fmt.Errorf("allinone: %w\n(as root, `make run` installs it; otherwise run: sudo apt-get install postgresql-15)", err)
		}
		return nil, fmt.Errorf("allinone: start postgres: %w", err)
	}
	if err := c.CreateDatabase(ctx, databaseName, ""); err != nil && !strings.Contains(err.Error(), "already exists") {
		_ = c.Stop(context.WithoutCancel(ctx))
		return nil, err
	}
	return c, nil
}

// ensureAdmin reads the kept credentials, or creates the first admin and
// keeps theirs in dir/credentials (mode 0600).
func ensureAdmin(ctx context.Context, d *daemon.Daemon, dir, siteURL string, minLen int) (Credentials, error) {
	path := filepath.Join(dir, "credentials")
	if c, err := readCredentials(path); err == nil {
		c.URL = siteURL
		return c, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return Credentials{}, err
	}
	pw, err := newPassword(max(minLen, 20))
	if err != nil {
		return Credentials{}, err
	}
	created, appErr := d.App().BootstrapAdmin(ctx, adminUsername, adminEmail, pw)
	if appErr != nil {
		return Credentials{}, fmt.Errorf("allinone: create admin: %w", appErr)
	}
	if !created {
		return Credentials{}, fmt.Errorf("allinone: the database already has users but %s is missing; "+
			"remove %s to start afresh, or log in with an existing account", path, dir)
	}
	c := Credentials{URL: siteURL, Username: adminUsername, Password: pw}
	body := fmt.Sprintf("Username: %s\nPassword: %s\n", c.Username, c.Password)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		return Credentials{}, fmt.Errorf("allinone: keep credentials: %w", err)
	}
	return c, nil
}

func readCredentials(path string) (Credentials, error) {
	f, err := os.Open(path)
	if err != nil {
		return Credentials{}, err
	}
	defer f.Close()
	var c Credentials
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ": ")
		switch k {
		case "Username":
			c.Username = v
		case "Password":
			c.Password = v
		}
	}
	if c.Username == "" || c.Password == "" {
		return Credentials{}, fmt.Errorf("allinone: %s is not a credentials file (remove it to start afresh)", path)
	}
	return c, sc.Err()
}

// newPassword returns a random password that meets any PasswordSettings:
// it always holds a lower- and upper-case letter, a digit and a symbol.
func newPassword(n int) (string, error) {
	const (
		lower  = "abcdefghijkmnopqrstuvwxyz"
		upper  = "ABCDEFGHJKLMNPQRSTUVWXYZ"
		digits = "23456789"
		symbol = "-_.!"
	)
	pick := func(set string) (byte, error) {
		i, err := rand.Int(rand.Reader, big.NewInt(int64(len(set))))
		if err != nil {
			return 0, err
		}
		return set[i.Int64()], nil
	}
	out := make([]byte, 0, n)
	for _, set := range []string{lower, upper, digits, symbol} {
		c, err := pick(set)
		if err != nil {
			return "", err
		}
		out = append(out, c)
	}
	all := lower + upper + digits
	for len(out) < n {
		c, err := pick(all)
		if err != nil {
			return "", err
		}
		out = append(out, c)
	}
	return string(out), nil
}
