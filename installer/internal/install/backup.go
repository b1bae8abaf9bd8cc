package install

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/garrison-chat/garrison/installer/internal/inventory"
)

// --- backup ----------------------------------------------------------------

// backup creates the stanza in the site's pgBackRest repository (the
// storage step made its bucket), from the primary or, with a backup node,
// on it (pgBackRest runs stanza-create where the repository is), and
// checks that WAL archiving reaches it (pgbackrest check switches a WAL
// segment and waits for it to be archived).
func (in *Installer) backup(ctx context.Context) error {
	lead, err := in.waitLeader(ctx)
	if err != nil {
		return err
	}
	if b, ok := in.site.BackupHost(); ok {
		lead = in.nodes[b.Name]
	}
	exists, err := in.stanzaExists(ctx, lead)
	if err != nil {
		return err
	}
	if !exists {
		if _, err := in.pgbackrest(ctx, lead, "stanza-create"); err != nil {
			return err
		}
		in.changed(lead, "created the pgBackRest stanza %s", Stanza)
	}
	// Archiving failed (and Postgres kept the segments) until the stanza
	// existed; check waits until a fresh segment is in the repository.
	_, err = in.pgbackrest(ctx, lead, "check")
	return err
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

// stanzaExists asks pgBackRest whether the repository holds the stanza.
func (in *Installer) stanzaExists(ctx context.Context, n *node) (bool, error) {
	out, err := in.pgbackrest(ctx, n, "info --output=json")
	if err != nil {
		return false, err
	}
	return stanzaInInfo([]byte(out))
}

// stanzaInInfo reads `pgbackrest info --output=json`: the stanza exists
// unless its status is 1, "missing stanza path".
func stanzaInInfo(data []byte) (bool, error) {
	var info []struct {
		Name   string `json:"name"`
		Status struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"status"`
	}
	if err := json.Unmarshal(data, &info); err != nil {
		return false, fmt.Errorf("pgbackrest info: %w (%q)", err, strings.TrimSpace(string(data)))
	}
	for _, s := range info {
		if s.Name != Stanza {
			continue
		}
		switch s.Status.Code {
		case 0, 2: // ok; no backup yet
			return true, nil
		case 1: // missing stanza path
			return false, nil
		default:
			return false, fmt.Errorf("pgbackrest info: stanza %s: %s (code %d)", Stanza, s.Status.Message, s.Status.Code)
		}
	}
	return false, nil
}

// ensureBackupBucket makes BackupBucket in MinIO (before PostgreSQL
// starts archiving into it), through the first storage node (an SSH tunnel to its port 9000, TLS against the site CA).
func (in *Installer) ensureBackupBucket(ctx context.Context) error {
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
