package daemon

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/config"
	"github.com/garrison-chat/garrison/server/internal/push"
)

func TestPushWiring(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	require.Equal(t, "false", ClientConfig(cfg, "diag")["SendPushNotifications"])
	d := New(cfg, slog.New(slog.DiscardHandler))
	sender, err := d.pushSender()
	require.NoError(t, err)
	require.Nil(t, sender, "push off: no sender, so no queue")

	cfg.EmailSettings.SendPushNotifications = true
	cfg.EmailSettings.PushNotificationServer = "https://garrison:s3cret@push.site.example:8066"
	cfg.EmailSettings.PushNotificationContents, cfg.EmailSettings.PushNotificationBuffer = "full", 50
	require.Equal(t, "true", ClientConfig(cfg, "diag")["SendPushNotifications"])
	sender, err = d.pushSender()
	require.NoError(t, err)
	require.IsType(t, &push.HTTP{}, sender)
	require.NotContains(t, sender.(*push.HTTP).URL(), "s3cret")
	s := Settings(cfg)
	require.Equal(t, "full", s.PushContents)
	require.Equal(t, 50, s.PushBuffer)
}
