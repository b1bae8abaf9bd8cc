package daemon

import (
	"fmt"
	"time"

	"github.com/garrison-chat/garrison/pushproxy/internal/proxy"
	"github.com/garrison-chat/garrison/pushproxy/internal/pushservice"
)

// buildParts creates the push service and the front. The front's HTTP
// client reaches the push service in-process for the proxy's own
// endpoints.
func (d *Daemon) buildParts(o Options) error {
	cfg := d.cfg
	svc, err := pushservice.New(pushservice.Options{
		Pool:       d.pool,
		PublicURL:  cfg.Public(),
		Logger:     d.logger.With("part", "pushservice"),
		Registerer: d.registry,
	})
	if err != nil {
		return fmt.Errorf("push service: %w", err)
	}
	keys, err := proxy.LoadOrCreateVAPIDKeys(cfg.VAPIDKeyFile)
	if err != nil {
		return fmt.Errorf("VAPIDKeyFile: %w", err)
	}
	timeout := time.Duration(cfg.SendTimeoutSec) * time.Second
	front, err := proxy.New(proxy.Options{
		Pool:             d.pool,
		Logger:           d.logger.With("part", "proxy"),
		Registerer:       d.registry,
		VAPID:            keys,
		VAPIDSubject:     cfg.VAPIDSubject,
		SenderSecret:     cfg.SenderSecret,
		ContentPolicy:    proxy.ContentPolicy(cfg.ContentPolicy),
		ThrottlePerSec:   cfg.ThrottlePerSec,
		ThrottleBurst:    cfg.ThrottleBurst,
		TrustedProxies:   cfg.Proxies(),
		SendTimeout:      timeout,
		AllowedPushHosts: cfg.PushHosts(),
		HTTPClient:       newLocalDoer(cfg.Public(), svc.Handler(), newPushClient(timeout, nil)),
		Version:          o.Version,
		Hash:             o.Hash,
	})
	if err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	d.service, d.front = svc, front
	return nil
}
