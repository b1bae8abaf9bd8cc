package cluster

// Crash stops g without leaving, as a killed process would.
func Crash(g *Gossip) { g.crash() }
