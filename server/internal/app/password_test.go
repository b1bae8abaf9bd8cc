package app

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/garrison-chat/garrison/server/internal/model"
)

// fillPasswordSlots takes every password slot of a and returns a func
// giving them back.
func fillPasswordSlots(t *testing.T, a *App) func() {
	t.Helper()
	var releases []func()
	// The first take makes the semaphore, so its size is known after it.
	for len(releases) == 0 || len(releases) < cap(a.pw.slots) {
		release, appErr := a.passwordSlot(context.Background(), "test")
		require.Nil(t, appErr)
		releases = append(releases, release)
	}
	return func() {
		for _, r := range releases {
			r()
		}
	}
}

func TestPasswordSlotsCancelledWaitReturns(t *testing.T) {
	t.Parallel()
	a := &App{bcrypt: bcrypt.MinCost}
	release := fillPasswordSlots(t, a)
	defer release()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *model.AppError, 1)
	go func() {
		_, appErr := a.checkPassword(ctx, "test", "", "password1")
		done <- appErr
	}()
	cancel()
	appErr := <-done
	require.NotNil(t, appErr)
	require.Equal(t, "api.user.login.busy.app_error", appErr.ID)
	require.Equal(t, http.StatusServiceUnavailable, appErr.StatusCode)
	// Cancellation, not the wait cap, ended the wait.
	require.True(t, errors.Is(appErr, context.Canceled), "%v", appErr)

	_, appErr = a.hashPassword(ctx, "test", "password1")
	require.NotNil(t, appErr)
	require.Equal(t, "api.user.login.busy.app_error", appErr.ID)
}

func TestPasswordSlotsWaiterGetsFreedSlot(t *testing.T) {
	t.Parallel()
	a := &App{bcrypt: bcrypt.MinCost}
	release := fillPasswordSlots(t, a)
	type result struct {
		hash   string
		appErr *model.AppError
	}
	done := make(chan result, 1)
	go func() {
		h, appErr := a.hashPassword(context.Background(), "test", "password1")
		done <- result{h, appErr}
	}()
	release()
	r := <-done
	require.Nil(t, r.appErr)
	ok, appErr := a.checkPassword(context.Background(), "test", r.hash, "password1")
	require.Nil(t, appErr)
	require.True(t, ok)
	ok, appErr = a.checkPassword(context.Background(), "test", r.hash, "password2")
	require.Nil(t, appErr)
	require.False(t, ok)
	require.Empty(t, a.pw.slots, "every slot is given back")
}

func TestDummyHashUsesAppCost(t *testing.T) {
	t.Parallel()
	a := &App{bcrypt: bcrypt.MinCost + 1}
	h := a.dummyHash()
	cost, err := bcrypt.Cost([]byte(h))
	require.NoError(t, err)
	require.Equal(t, bcrypt.MinCost+1, cost)
	require.Equal(t, h, a.dummyHash(), "made once per App")
	// An empty hash (no account) never matches, whatever the password.
	ok, appErr := a.checkPassword(context.Background(), "test", "", "garrison-timing-equaliser")
	require.Nil(t, appErr)
	require.False(t, ok)
}
