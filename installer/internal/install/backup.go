package install

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/garrison-chat/garrison/installer/internal/inventory"
)

// --- backup ----------------------------------------------------------------

// backup creates the stanza in the site's pgBackRest repository (the
// storage step made its bucket), from the primary or, with a backup node,
// on it (pgBackRest runs repository commands where the repository is);
// checks that WAL archiving reaches it (pgbackrest check switches a WAL
// segment and waits for it to be archived); takes the first full backup,
// without which the archive could not be restored nor ever expire; and
// schedules the backups that follow (BackupTimer).
func (in *Installer) backup(ctx context.Context) error {
	lead, err := in.waitLeader(ctx)
	if err != nil {
		return err
	}
	if b, ok := in.site.BackupHost(); ok {
		lead = in.nodes[b.Name]
	}
	ctx, cancel := context.WithTimeout(ctx, in.opts.StageTimeout)
	defer cancel()
	st, err := in.stanzaState(ctx, lead)
	if err != nil {
		return err
	}
	if st == stanzaMissing {
		if _, err := in.pgbackrest(ctx, lead, "stanza-create"); err != nil {
			return err
		}
		in.changed(lead, "created the pgBackRest stanza %s", Stanza)
	}
	// Archiving failed (and Postgres kept the segments) until the stanza
	// existed; check waits until a fresh segment is in the repository.
	if _, err := in.pgbackrest(ctx, lead, "check"); err != nil {
		return err
	}
	if st != stanzaBackedUp {
		if _, err := in.pgbackrest(ctx, lead, "--type=full backup"); err != nil {
			return err
		}
		in.changed(lead, "took the first full backup")
	}
	return in.scheduleBackups(ctx)
}

// Backup units, on the nodes that back up: the backup node, or every db
// node of a site without one (where only the primary's run does anything).
const (
	BackupService = "garrison-pgbackrest-backup.service"
	BackupTimer   = "garrison-pgbackrest-backup.timer"
)

// BackupUnits renders the backup service and timer for node n: every
// night a differential backup, on Sundays a full one; pgBackRest then
// expires what repo1-retention-full (2 full backups) no longer needs,
// with their WAL. ($$ and %% are systemd's escapes of $ and %.)
func (s *Site) BackupUnits(n inventory.Node) (service, timer []byte) {
	cond := ""
	if !n.Has(inventory.RoleBackup) {
		cond = "# Every db node has the timer; only the primary backs up.\n" +
			`ExecCondition=/bin/sh -c '[ "$$(psql -XqtA -d postgres -c "select pg_is_in_recovery()")" = f ]'` + "\n"
	}
	service = []byte(header("#") + `[Unit]
Description=Garrison database backup (pgBackRest, stanza ` + Stanza + `)
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
User=postgres
Group=postgres
` + cond + `ExecStart=/bin/sh -c 'if [ "$$(date +%%u)" = 7 ]; then t=full; else t=diff; fi; exec pgbackrest --stanza=` + Stanza + ` --type=$$t backup'
Nice=10
IOSchedulingClass=idle
NoNewPrivileges=yes
PrivateTmp=yes
ProtectSystem=full
ProtectHome=yes
`)
	timer = []byte(header("#") + `[Unit]
Description=Nightly Garrison database backup

[Timer]
OnCalendar=*-*-* 02:30:00
RandomizedDelaySec=30min
Persistent=true

[Install]
WantedBy=timers.target
`)
	return service, timer
}

// runsBackups reports whether node n has the backup timer: the backup
// node, or every db node of a site without one.
func (s *Site) runsBackups(n inventory.Node) bool {
	if b, ok := s.BackupHost(); ok {
		return b.Name == n.Name
	}
	return n.Has(inventory.RoleDB)
}

// scheduleBackups installs and enables the backup timer where backups run.
func (in *Installer) scheduleBackups(ctx context.Context) error {
	var nodes []inventory.Node
	for _, n := range in.site.Inv.Nodes {
		if in.site.runsBackups(n) {
			nodes = append(nodes, n)
		}
	}
	return in.each(ctx, nodes, func(ctx context.Context, n *node) error {
		svc, timer := in.site.BackupUnits(n.Node)
		a, err := in.write(ctx, n, "/etc/systemd/system/"+BackupService, svc, 0o644, "root:root")
		if err != nil {
			return err
		}
		b, err := in.write(ctx, n, "/etc/systemd/system/"+BackupTimer, timer, 0o644, "root:root")
		if err != nil {
			return err
		}
		if a || b {
			if _, err := in.sh(ctx, n, "systemctl daemon-reload"); err != nil {
				return err
			}
		}
		return in.ensureUnit(ctx, n, BackupTimer, b)
	})
}

// pgbackrest runs a pgBackRest command as postgres on n; its error carries
// pgBackRest's own message.
func (in *Installer) pgbackrest(ctx context.Context, n *node, args string) (string, error) {
	res, err := n.c.Run(ctx, "cd / && runuser -u postgres -- pgbackrest --stanza="+Stanza+" "+args, nil)
	if err != nil {
		return "", fmt.Errorf("pgbackrest %s: %w", args, err)
	}
	return string(res.Stdout), nil
}

// stanzaState is what the repository holds of the stanza.
type stanzaState int

const (
	stanzaMissing  stanzaState = iota // no stanza (or a half-created one)
	stanzaEmpty                       // a stanza, no backup yet
	stanzaBackedUp                    // at least one backup
)

// stanzaState asks pgBackRest what the repository holds of the stanza.
func (in *Installer) stanzaState(ctx context.Context, n *node) (stanzaState, error) {
	out, err := in.pgbackrest(ctx, n, "--log-level-console=warn info --output=json")
	if err != nil {
		return stanzaMissing, err
	}
	return stanzaInInfo([]byte(out))
}

// stanzaInInfo reads `pgbackrest info --output=json` (status codes from
// pgBackRest's info command).
func stanzaInInfo(data []byte) (stanzaState, error) {
	var info []struct {
		Name   string `json:"name"`
		Status struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"status"`
	}
	if err := json.Unmarshal(data, &info); err != nil {
		return stanzaMissing, fmt.Errorf("pgbackrest info: %w (%q)", err, strings.TrimSpace(string(data)))
	}
	for _, s := range info {
		if s.Name != Stanza {
			continue
		}
		switch s.Status.Code {
		case 0: // ok
			return stanzaBackedUp, nil
		case 2: // no valid backups
			return stanzaEmpty, nil
		case 1, 3: // missing stanza path; missing stanza data (an interrupted stanza-create, which may run again)
			return stanzaMissing, nil
		default:
			return stanzaMissing, fmt.Errorf("pgbackrest info: stanza %s: %s (code %d)", Stanza, s.Status.Message, s.Status.Code)
		}
	}
	return stanzaMissing, nil
}

// waitPGBackRestServer waits until pgBackRest's TLS server on n completes
// a handshake with garrisonctl's certificate, against the site CA.
func (in *Installer) waitPGBackRestServer(ctx context.Context, n *node) error {
	cert, err := in.clientCert()
	if err != nil {
		return err
	}
	tr := in.httpClient(n, n.Name, &cert).Transport.(*http.Transport)
	addr := hostPort(n.Address, PortPGBackRest)
	return in.waitFor(ctx, "pgBackRest's server on "+n.Name, func(ctx context.Context) error {
		if err := in.unitFailed(ctx, n, "pgbackrest.service"); err != nil {
			return err
		}
		raw, err := tr.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer raw.Close()
		return tls.Client(raw, tr.TLSClientConfig).HandshakeContext(ctx)
	})
}

// ensureBackupBucket makes BackupBucket in MinIO (before PostgreSQL
// starts archiving into it), through the first storage node (an SSH tunnel to its port 9000, TLS against the site CA).
func (in *Installer) ensureBackupBucket(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	st := in.nodes[in.site.Inv.With(inventory.RoleStorage)[0].Name]
	hc := in.httpClient(st, "localhost", nil)
	mc, err := minio.New(hostPort("127.0.0.1", PortMinIO), &minio.Options{
		Creds:     credentials.NewStaticV4(in.sec.MinIOUser, in.sec.MinIOPassword, ""),
		Secure:    true,
		Region:    "us-east-1",
		Transport: hc.Transport.(*http.Transport),
	})
	if err != nil {
		return fmt.Errorf("minio client: %w", err)
	}
	ok, err := mc.BucketExists(ctx, BackupBucket)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", BackupBucket, err)
	}
	if ok {
		return nil
	}
	if err := mc.MakeBucket(ctx, BackupBucket, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		return fmt.Errorf("make bucket %s: %w", BackupBucket, err)
	}
	in.changed(st, "made the MinIO bucket %s for pgBackRest", BackupBucket)
	return nil
}
