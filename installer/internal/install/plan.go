package install

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/garrison-chat/garrison/installer/internal/inventory"
)

// Step IDs, in the order an install runs them. --stop-after takes one.
const (
	StepConnect  = "connect"
	StepRepo     = "repo"
	StepPackages = "packages"
	StepTLS      = "tls"
	StepEtcd     = "etcd"
	StepStorage  = "storage"
	StepDatabase = "database"
	StepRoles    = "db-roles"
	StepBackup   = "backup"
	StepApp      = "app"
	StepAdmin    = "admin"
	StepProxy    = "proxy"
	StepAgent    = "agent"
	StepHealth   = "health"
)

// PlannedStep is one step of a plan: what it does, and on which nodes.
type PlannedStep struct {
	ID    string
	Title string
	// Nodes lists the nodes the step acts on, in the order it acts.
	Nodes []string
	// Detail says per node what the step does there (packages, units…).
	Detail map[string]string
}

// Plan lists the steps an install of the site runs, in order, each with
// its nodes. `garrisonctl plan` prints it; the installer runs exactly
// these steps (runStep panics on a step that is not here).
func (s *Site) Plan(bundleVersion string) []PlannedStep {
	inv := s.Inv
	all := names(inv.Nodes)
	var steps []PlannedStep
	add := func(id, title string, nodes []string, detail map[string]string) {
		steps = append(steps, PlannedStep{ID: id, Title: title, Nodes: nodes, Detail: detail})
	}
	ver := bundleVersion
	if ver == "" {
		ver = "<bundle version>"
	}
	add(StepConnect, "connect over SSH and pin host keys; run the preflight checks", all, nil)
	add(StepRepo, "copy the bundle's signed apt repository "+ver+" and make it the source of Garrison's packages", all, nil)
	pk := map[string]string{}
	for _, n := range inv.Nodes {
		pk[n.Name] = strings.Join(s.Packages(n), " ")
	}
	add(StepPackages, "install the packages of each node's roles from that repository", all, pk)
	add(StepTLS, "issue node certificates from the site CA ("+inv.TLS.Mode+") and install them", all, nil)
	etcd := names(inv.EtcdMembers())
	add(StepEtcd, fmt.Sprintf("start etcd (%d members, v2 API for Patroni) and wait for its quorum", len(etcd)), etcd, nil)
	if inv.UsesMinIO() {
		st := inv.With(inventory.RoleStorage)
		drives := 0
		for _, n := range st {
			drives += len(n.Drives)
		}
		title := fmt.Sprintf("start MinIO over %d drives on %d nodes, wait for it and make the bucket %s for the WAL archive", drives, len(st), BackupBucket)
		if _, ok := s.BackupHost(); ok {
			title = fmt.Sprintf("start MinIO over %d drives on %d nodes and wait for it", drives, len(st))
		}
		add(StepStorage, title, names(st), nil)
	} else {
		add(StepStorage, "keep files on the app node's disk (/var/lib/garrison/data; no MinIO)", names(inv.With(inventory.RoleApp)), nil)
	}
	db := names(inv.With(inventory.RoleDB))
	mode := "asynchronous"
	if inv.Sync() {
		mode = "synchronous"
	}
	dbNodes, backupOn, from := db, db[:1], " from the primary"
	repo := "a directory on " + db[0] + " (" + PGBackRestRepo + ")"
	title := fmt.Sprintf("start PostgreSQL 15 under Patroni (%d nodes, %s replication) and wait for a leader and streaming replicas", len(db), mode)
	switch b, ok := s.BackupHost(); {
	case ok:
		repo, backupOn, from = "the backup node "+b.Name+" ("+PGBackRestRepo+", over pgBackRest's TLS protocol)", []string{b.Name}, ""
		title = "start pgBackRest's TLS servers, then " + title
		if !b.Has(inventory.RoleDB) {
			dbNodes = append(slices.Clone(db), b.Name)
		}
	case inv.UsesMinIO():
		repo = "the MinIO bucket " + BackupBucket
	}
	add(StepDatabase, title, dbNodes, nil)
	add(StepRoles, "create the garrison and push databases and their roles on the primary", db[:1], nil)
	add(StepBackup, "create the pgBackRest stanza in "+repo+from+" and check that WAL archiving reaches it", backupOn, nil)
	app := names(inv.With(inventory.RoleApp))
	what := "garrison"
	if inv.Push() {
		what = "the push proxy and garrison"
	}
	add(StepApp, "start "+what+" (the first node applies the database migrations) and wait for health", app, nil)
	add(StepAdmin, "create the first admin, "+inv.Admin.Username, app[:1], nil)
	add(StepProxy, "configure nginx for "+inv.SiteURL+" and wait until the site answers through it", names(inv.With(inventory.RoleProxy)), nil)
	add(StepAgent, fmt.Sprintf("start the node agent (port %d, mTLS) everywhere", PortAgent), all, nil)
	add(StepHealth, "check every node's health and write the signed install receipt", all, nil)
	return steps
}

// StepIDs are the IDs of a site's plan, for validating --stop-after.
func (s *Site) StepIDs() []string {
	var ids []string
	for _, st := range s.Plan("") {
		ids = append(ids, st.ID)
	}
	return ids
}

// PrintPlan writes the plan for people.
func PrintPlan(w io.Writer, s *Site, bundleVersion string) {
	inv := s.Inv
	fmt.Fprintf(w, "Plan for site %s (%s): %d node(s)\n\n", inv.Site, inv.SiteURL, len(inv.Nodes))
	for _, n := range inv.Nodes {
		fmt.Fprintf(w, "  %-12s %-16s %s\n", n.Name, n.Address, strings.Join(n.Roles, ","))
	}
	fmt.Fprintln(w)
	for i, st := range s.Plan(bundleVersion) {
		fmt.Fprintf(w, "%2d. %-9s %s\n", i+1, st.ID, st.Title)
		fmt.Fprintf(w, "    %-9s on: %s\n", "", strings.Join(st.Nodes, ", "))
		for _, n := range st.Nodes {
			if d := st.Detail[n]; d != "" {
				fmt.Fprintf(w, "    %-9s   %s: %s\n", "", n, d)
			}
		}
	}
	fmt.Fprintln(w, "\nEvery step checks before it changes anything: a second run changes nothing, and a run\nstopped anywhere finishes on the next.")
}

func names(ns []inventory.Node) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.Name
	}
	return out
}
