package install

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/garrison-chat/garrison/installer/internal/inventory"
	"github.com/garrison-chat/garrison/nginx"
)

// header starts every file garrisonctl writes, so an admin who opens one
// knows not to edit it by hand.
func header(comment string) string {
	return comment + " Written by garrisonctl install; a later install run rewrites it.\n" +
		comment + " Change the inventory and run the install again instead of editing.\n"
}

// EtcdEnv renders /etc/default/etcd for etcd member n: TLS with client
// certificates on the client and peer ports, the v2 API on (Patroni 3.0.2
// must use its etcd: v2 store, see docs/install.md), health and metrics in
// plain HTTP on loopback only, for the node agent.
func (s *Site) EtcdEnv(n inventory.Node) []byte {
	var cluster []string
	for _, m := range s.Inv.EtcdMembers() {
		cluster = append(cluster, m.Name+"=https://"+hostPort(m.Address, PortEtcdPeer))
	}
	key := KeyFile("etcd")
	var b strings.Builder
	b.WriteString(header("#"))
	kv := func(k, v string) { fmt.Fprintf(&b, "%s=%q\n", k, v) }
	kv("ETCD_NAME", n.Name)
	kv("ETCD_DATA_DIR", EtcdData)
	kv("ETCD_LISTEN_PEER_URLS", "https://"+hostPort(n.Address, PortEtcdPeer))
	kv("ETCD_INITIAL_ADVERTISE_PEER_URLS", "https://"+hostPort(n.Address, PortEtcdPeer))
	kv("ETCD_LISTEN_CLIENT_URLS", "https://"+hostPort(n.Address, PortEtcdClient)+",https://127.0.0.1:2379")
	kv("ETCD_ADVERTISE_CLIENT_URLS", "https://"+hostPort(n.Address, PortEtcdClient))
	kv("ETCD_LISTEN_METRICS_URLS", "http://127.0.0.1:2381")
	kv("ETCD_INITIAL_CLUSTER", strings.Join(cluster, ","))
	kv("ETCD_INITIAL_CLUSTER_TOKEN", "garrison-"+s.Inv.Site)
	kv("ETCD_INITIAL_CLUSTER_STATE", "new")
	kv("ETCD_ENABLE_V2", "true")
	kv("ETCD_HEARTBEAT_INTERVAL", strconv.Itoa(s.Timings.EtcdHeartbeatMS))
	kv("ETCD_ELECTION_TIMEOUT", strconv.Itoa(s.Timings.EtcdElectionMS))
	kv("ETCD_CERT_FILE", NodeCertFile)
	kv("ETCD_KEY_FILE", key)
	kv("ETCD_TRUSTED_CA_FILE", CAFile)
	kv("ETCD_CLIENT_CERT_AUTH", "true")
	kv("ETCD_PEER_CERT_FILE", NodeCertFile)
	kv("ETCD_PEER_KEY_FILE", key)
	kv("ETCD_PEER_TRUSTED_CA_FILE", CAFile)
	kv("ETCD_PEER_CLIENT_CERT_AUTH", "true")
	return []byte(b.String())
}

// Patroni renders /etc/patroni/config.yml for db node n.
func (s *Site) Patroni(n inventory.Node, sec *Secrets) ([]byte, error) {
	var etcdHosts []string
	for _, m := range s.Inv.EtcdMembers() {
		etcdHosts = append(etcdHosts, hostPort(m.Address, PortEtcdClient))
	}
	hba := []string{
		"local all postgres peer",
		"host all postgres 127.0.0.1/32 scram-sha-256",
		// Patroni reads a stopped-leader's timeline over a local
		// replication connection before it decides on pg_rewind; refused,
		// an old leader never rejoins after a partition.
		"hostssl replication replicator 127.0.0.1/32 scram-sha-256",
	}
	for _, m := range s.Inv.With(inventory.RoleDB) {
		hba = append(hba,
			"hostssl replication replicator "+m.Address+"/32 scram-sha-256",
			"hostssl all rewinder "+m.Address+"/32 scram-sha-256",
			"hostssl all postgres "+m.Address+"/32 scram-sha-256")
	}
	for _, m := range s.Inv.With(inventory.RoleApp) {
		hba = append(hba, "hostssl "+DBGarrison+" garrison "+m.Address+"/32 scram-sha-256")
		if s.Inv.Push() {
			hba = append(hba, "hostssl "+DBPush+" "+DBPush+" "+m.Address+"/32 scram-sha-256")
		}
	}
	hba = append(hba, "host all all 0.0.0.0/0 reject", "host all all ::/0 reject")

	pgKey := KeyFile("postgres")
	tlsAuth := map[string]any{"sslmode": "verify-ca", "sslrootcert": CAFile}
	withTLS := func(user, password string) map[string]any {
		m := map[string]any{"username": user, "password": password}
		for k, v := range tlsAuth {
			m[k] = v
		}
		return m
	}
	t := s.Timings
	cfg := map[string]any{
		"scope":     s.Inv.Site,
		"namespace": "/garrison/",
		"name":      n.Name,
		"restapi": map[string]any{
			"listen":          hostPort(n.Address, PortPatroni),
			"connect_address": hostPort(n.Address, PortPatroni),
			"certfile":        NodeCertFile,
			"keyfile":         pgKey,
			"cafile":          CAFile,
			"verify_client":   "optional",
			"authentication":  map[string]any{"username": "patroni", "password": sec.PatroniREST},
		},
		"ctl": map[string]any{"certfile": NodeCertFile, "keyfile": pgKey, "cacert": CAFile},
		// The v2 store, never etcd3: Debian's Patroni 3.0.2 overwrites
		// another node's leader key through etcd3 after a partition heals
		// (a split brain that loses acknowledged writes).
		"etcd": map[string]any{
			"hosts":    etcdHosts,
			"protocol": "https",
			"cacert":   CAFile,
			"cert":     NodeCertFile,
			"key":      pgKey,
		},
		"bootstrap": map[string]any{
			"dcs": map[string]any{
				"ttl":                     t.TTL,
				"loop_wait":               t.LoopWait,
				"retry_timeout":           t.RetryTimeout,
				"maximum_lag_on_failover": 1 << 20,
				"synchronous_mode":        s.Inv.Sync(),
				"postgresql": map[string]any{
					"use_pg_rewind": true,
					"use_slots":     true,
					"parameters": map[string]any{
						"wal_level":             "replica",
						"hot_standby":           "on",
						"wal_log_hints":         "on",
						"max_wal_senders":       10,
						"max_replication_slots": 10,
						"wal_keep_size":         "256MB",
						"password_encryption":   "scram-sha-256",
						"max_connections":       300,
						// An isolated primary's shutdown waits for its walsenders;
						// a short timeout lets it demote promptly.
						"wal_sender_timeout": "10s",
					},
				},
			},
			"initdb": []any{map[string]any{"encoding": "UTF8"}, map[string]any{"locale": "C.UTF-8"}, "data-checksums"},
		},
		"postgresql": map[string]any{
			"listen":          n.Address + ",127.0.0.1:" + strconv.Itoa(PortPostgres),
			"connect_address": hostPort(n.Address, PortPostgres),
			"data_dir":        PGDataDir,
			"bin_dir":         PGBinDir,
			"pgpass":          "/var/lib/postgresql/.pgpass-patroni",
			"use_unix_socket": true,
			"pg_hba":          hba,
			"authentication": map[string]any{
				"superuser":   map[string]any{"username": "postgres", "password": sec.PostgresSuperuser},
				"replication": withTLS("replicator", sec.Replication),
				"rewind":      withTLS("rewinder", sec.Rewind),
			},
			"parameters": map[string]any{
				"unix_socket_directories":  "/var/run/postgresql",
				"ssl":                      "on",
				"ssl_cert_file":            NodeCertFile,
				"ssl_key_file":             pgKey,
				"ssl_ca_file":              CAFile,
				"ssl_min_protocol_version": "TLSv1.2",
				// Every WAL segment goes to the site's pgBackRest
				// repository (PGBackRest): point-in-time recovery.
				"archive_mode":    "on",
				"archive_command": "pgbackrest --stanza=" + Stanza + " archive-push %p",
			},
		},
		"watchdog": map[string]any{"mode": "off"}, // no /dev/watchdog on these nodes; Patroni demotes itself
		"tags":     map[string]any{"nofailover": false, "noloadbalance": false, "clonefrom": false, "nosync": false},
	}
	var buf bytes.Buffer
	buf.WriteString(header("#"))
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(cfg); err != nil {
		return nil, fmt.Errorf("install: render patroni config: %w", err)
	}
	return buf.Bytes(), enc.Close()
}

// MinIOEnv renders /etc/garrison/minio.env, the same on every storage
// node: distributed MinIO lists every node's drives.
func (s *Site) MinIOEnv(sec *Secrets) []byte {
	var b strings.Builder
	b.WriteString(header("#"))
	b.WriteString("# Holds MinIO's root credentials: 0640 root:garrison-minio.\n")
	fmt.Fprintf(&b, "MINIO_VOLUMES=%q\n", s.MinIOVolumes())
	fmt.Fprintf(&b, "MINIO_OPTS=%q\n", "--address :"+strconv.Itoa(PortMinIO)+" --console-address 127.0.0.1:"+strconv.Itoa(PortMinIOAdmin)+" --certs-dir "+MinIOCerts)
	fmt.Fprintf(&b, "MINIO_ROOT_USER=%q\n", sec.MinIOUser)
	fmt.Fprintf(&b, "MINIO_ROOT_PASSWORD=%q\n", sec.MinIOPassword)
	fmt.Fprintf(&b, "MINIO_SITE_NAME=%q\n", s.Inv.Site)
	fmt.Fprintf(&b, "MINIO_BROWSER=%q\n", "off")
	if s.Inv.Options.AllowDrivesOnRootDisk {
		// MinIO refuses a drive on the root disk unless the root-drive
		// threshold is set: with 1B no disk counts as the root one. Only
		// on sites whose inventory allows it (test sites).
		b.WriteString("# options.allow_drives_on_root_disk: MinIO may use drives on the root disk.\n")
		fmt.Fprintf(&b, "MINIO_ROOTDRIVE_THRESHOLD_SIZE=%q\n", "1B")
	}
	return []byte(b.String())
}

// PGBackRest renders /etc/pgbackrest.conf for node n (a db node or the
// backup node). The site has one repository, in order of preference:
//   - on the backup node, which serves it over pgBackRest's TLS protocol
//     (port 8432, certificates from the site CA, each side admitting only
//     the other's certificate names); db nodes run the same server so the
//     backup node can back them up;
//   - a bucket in MinIO over TLS verified against the site CA;
//   - a directory on the only db node of a site with neither.
//
// Patroni's archive_command reads it on the db nodes.
func (s *Site) PGBackRest(n inventory.Node, sec *Secrets) []byte {
	var b strings.Builder
	b.WriteString(header("#"))
	b.WriteString("# Read by postgres (archive-push, archive-get, the TLS server) and by garrisonctl's backups.\n")
	b.WriteString("[global]\n")
	kv := func(k, v string) { fmt.Fprintf(&b, "%s=%s\n", k, v) }
	tlsFiles := func(prefix string) {
		kv(prefix+"-cert-file", NodeCertFile)
		kv(prefix+"-key-file", KeyFile("postgres"))
		kv(prefix+"-ca-file", CAFile)
	}
	host, remote := s.BackupHost()
	isHost := remote && n.Name == host.Name
	switch {
	case isHost || (!remote && !s.Inv.UsesMinIO()):
		kv("repo1-type", "posix")
		kv("repo1-path", PGBackRestRepo)
	case remote:
		kv("repo1-host", host.Name)
		kv("repo1-host-type", "tls")
		kv("repo1-host-port", strconv.Itoa(PortPGBackRest))
		tlsFiles("repo1-host")
	default:
		kv("repo1-type", "s3")
		kv("repo1-path", "/"+Stanza)
		kv("repo1-s3-bucket", BackupBucket)
		kv("repo1-s3-endpoint", s.backupEndpoint(n))
		kv("repo1-storage-port", strconv.Itoa(PortMinIO))
		kv("repo1-storage-ca-file", CAFile)
		kv("repo1-s3-region", "us-east-1")
		kv("repo1-s3-uri-style", "path")
		kv("repo1-s3-key", sec.MinIOUser)
		kv("repo1-s3-key-secret", sec.MinIOPassword)
	}
	if !remote || isHost {
		kv("repo1-retention-full", "2")
	}
	kv("compress-type", "zst")
	kv("start-fast", "y")
	kv("log-level-console", "info")
	kv("log-level-file", "detail")
	kv("log-path", "/var/log/pgbackrest")
	if s.runsPGBackRestServer(n) {
		// Who may connect: the backup node admits the db nodes, a db node
		// the backup node (certificate CN = node name), for this stanza.
		var peers []string
		if isHost {
			peers = names(s.Inv.With(inventory.RoleDB))
		} else {
			peers = []string{host.Name}
		}
		kv("tls-server-address", n.Address)
		kv("tls-server-port", strconv.Itoa(PortPGBackRest))
		kv("tls-server-cert-file", NodeCertFile)
		kv("tls-server-key-file", KeyFile("postgres"))
		kv("tls-server-ca-file", CAFile)
		// One client certificate name per line: a comma separates
		// stanzas, not clients.
		for _, peer := range peers {
			kv("tls-server-auth", peer+"="+Stanza)
		}
	}
	fmt.Fprintf(&b, "\n[%s]\n", Stanza)
	if isHost {
		for i, db := range s.Inv.With(inventory.RoleDB) {
			p := fmt.Sprintf("pg%d", i+1)
			kv(p+"-host", db.Name)
			kv(p+"-host-type", "tls")
			kv(p+"-host-port", strconv.Itoa(PortPGBackRest))
			tlsFiles(p + "-host")
			kv(p+"-path", PGDataDir)
			kv(p+"-port", strconv.Itoa(PortPostgres))
		}
		return []byte(b.String())
	}
	kv("pg1-path", PGDataDir)
	kv("pg1-port", strconv.Itoa(PortPostgres))
	kv("pg1-socket-path", "/var/run/postgresql")
	kv("pg1-user", "postgres")
	return []byte(b.String())
}

// GarrisonConfig renders /etc/garrison/config.json for app node n.
func (s *Site) GarrisonConfig(n inventory.Node, sec *Secrets) ([]byte, error) {
	apps := s.Inv.With(inventory.RoleApp)
	files := map[string]any{
		"MaxFileSize": int64(s.Inv.Options.MaxFileSizeMB) << 20,
	}
	if s.Inv.UsesMinIO() {
		files["DriverName"] = "amazons3"
		files["AmazonS3Endpoint"] = s.MinIOEndpoint(n)
		files["AmazonS3Bucket"] = Bucket
		files["AmazonS3Region"] = "us-east-1"
		files["AmazonS3SSL"] = true
		files["AmazonS3AccessKeyId"] = sec.MinIOUser
		files["AmazonS3SecretAccessKey"] = sec.MinIOPassword
	} else {
		files["DriverName"] = "local"
		files["Directory"] = "/var/lib/garrison/data/"
	}
	email := map[string]any{"SendPushNotifications": false}
	if s.Inv.Push() {
		u := "https://garrison:" + sec.PushSender + "@" + hostPort(n.Address, PortPush)
		email = map[string]any{
			"SendPushNotifications":    true,
			"PushNotificationServer":   u,
			"PushNotificationContents": "id_loaded",
		}
	}
	cfg := map[string]any{
		"ServiceSettings": map[string]any{
			"SiteURL":            s.Inv.SiteURL,
			"ListenAddress":      hostPort(n.Address, PortAPI),
			"ConnectionSecurity": "TLS",
			"TLSCertFile":        NodeCertFile,
			"TLSKeyFile":         KeyFile("garrison"),
		},
		"SqlSettings": map[string]any{
			"DriverName":         "postgres",
			"DataSource":         s.DSN("garrison", sec.Garrison, DBGarrison),
			"DataSourceReplicas": s.ReplicaDSNs("garrison", sec.Garrison, DBGarrison),
		},
		"FileSettings":  files,
		"EmailSettings": email,
		"ClusterSettings": map[string]any{
			"Enable":                 len(apps) > 1,
			"ClusterName":            s.Inv.Site,
			"GossipPort":             PortGossip,
			"BindAddress":            n.Address,
			"AdvertiseAddress":       n.Address,
			"EnableGossipEncryption": true,
			"GossipEncryptionKey":    sec.GossipKey,
		},
		"MetricsSettings": map[string]any{
			"Enable":        true,
			"ListenAddress": hostPort(n.Address, PortMetrics),
		},
		"LogSettings": map[string]any{"ConsoleJson": true},
	}
	out, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("install: render garrison config: %w", err)
	}
	return append(out, '\n'), nil
}

// PushProxyConfig renders /etc/garrison/pushproxy.json for app node n;
// the VAPID contact (RFC 8292) is the first admin's address.
func (s *Site) PushProxyConfig(n inventory.Node, sec *Secrets) ([]byte, error) {
	var proxies []string
	for _, p := range s.Inv.With(inventory.RoleProxy) {
		proxies = append(proxies, p.Address+"/32")
	}
	cfg := map[string]any{
		"ListenAddress":        hostPort(n.Address, PortPush),
		"MetricsListenAddress": hostPort(n.Address, PortPushMetric),
		"DataSource":           s.DSN(DBPush, sec.Push, DBPush),
		"PublicURL":            s.Inv.SiteURL,
		"VAPIDKeyFile":         "/var/lib/garrison-pushproxy/vapid.json",
		"VAPIDSubject":         "mailto:" + s.Inv.Admin.Email,
		"SenderSecret":         sec.PushSender,
		"ContentPolicy":        "id_only",
		"TrustedProxies":       proxies,
		"TLSCertFile":          NodeCertFile,
		"TLSKeyFile":           KeyFile("garrison-pushproxy"),
		"LogFormat":            "json",
	}
	out, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("install: render push proxy config: %w", err)
	}
	return append(out, '\n'), nil
}

// NginxConfig renders /etc/nginx/nginx.conf for proxy nodes.
func (s *Site) NginxConfig() ([]byte, error) {
	app := nginx.Upstream{TLS: &nginx.UpstreamTLS{CAFile: CAFile, ServerName: AppServerName}}
	var push *nginx.Upstream
	if s.Inv.Push() {
		push = &nginx.Upstream{TLS: &nginx.UpstreamTLS{CAFile: CAFile, ServerName: AppServerName}}
	}
	for _, n := range s.Inv.With(inventory.RoleApp) {
		app.Servers = append(app.Servers, nginx.Server{Addr: hostPort(n.Address, PortAPI)})
		if push != nil {
			push.Servers = append(push.Servers, nginx.Server{Addr: hostPort(n.Address, PortPush)})
		}
	}
	c := nginx.Config{
		PIDFile:    "/run/nginx.pid",
		ErrorLog:   "/var/log/nginx/error.log",
		AccessLog:  "/var/log/nginx/access.log",
		TempDir:    "/var/lib/nginx/garrison",
		User:       "www-data",
		Listen:     []string{"0.0.0.0:" + strconv.Itoa(PortHTTP)},
		ServerName: s.SiteHost(),
		TLS: &nginx.TLS{
			Listen:   []string{"0.0.0.0:" + strconv.Itoa(PortHTTPS)},
			CertFile: PublicCert,
			KeyFile:  PublicKey,
		},
		App:               app,
		Push:              push,
		ClientMaxBodySize: int64(s.Inv.Options.MaxFileSizeMB)<<20 + 1<<20,
		Limits: nginx.Limits{
			Login:  &nginx.RateLimit{Rate: 10, Per: time.Minute, Burst: 10},
			Exempt: s.Inv.Options.LoginRateLimitExempt,
		},
	}
	out, err := nginx.Render(c)
	if err != nil {
		return nil, fmt.Errorf("install: render nginx config: %w", err)
	}
	return append([]byte(header("#")), out...), nil
}

// AptSource renders the node's apt source for the bundle's repository:
// signed-by the bundle's archive key, never trusted=yes.
func AptSource(version string) []byte {
	return []byte(header("#") + "Types: deb\nURIs: file:" + RepoDir + "/" + version + "\nSuites: ./\nSigned-By: " + KeyringDir + "/garrison-archive-keyring.gpg\n")
}

// AptPreferences pins our own packages to the bundle's repository: no
// other source the node has can replace them.
func AptPreferences() []byte {
	return []byte(header("#") + "Package: garrison garrison-pushproxy garrisonctl garrison-minio\nPin: release o=Garrison\nPin-Priority: 1001\n")
}

// CreateClusterConf stops postgresql-common from creating (and starting)
// its default "main" cluster: Patroni makes and runs the site's.
var CreateClusterConf = []byte(header("#") + "create_main_cluster = false\n")

// TrustDropIn is a systemd drop-in making Go daemons trust the site CA
// (and only it) for outgoing TLS: MinIO, the push proxy, Postgres.
var TrustDropIn = []byte(header("#") + "[Service]\nEnvironment=SSL_CERT_FILE=" + CAFile + "\n")
