package app

import (
	"context"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode"

	"golang.org/x/crypto/bcrypt"

	"github.com/garrison-chat/garrison/server/internal/model"
)

// passwordWaitMax bounds how long a request queues for a password slot,
// so a flood does not pile up waiting requests behind the CPUs.
const passwordWaitMax = 10 * time.Second

// passwords bounds and equalises one App's password work. bcrypt is
// deliberately expensive; without a bound, unauthenticated login requests
// (each costs a hash before the per-address failure limiter counts it)
// could take every CPU. The zero value is ready: the semaphore and the
// timing-equaliser hash are made on first use.
type passwords struct {
	slotsOnce sync.Once
	slots     chan struct{} // one token per password check or hash running

	dummyOnce sync.Once
	dummy     string
}

// errPasswordBusy is the answer when no password slot frees up in time.
func errPasswordBusy(where string) *model.AppError {
	return model.NewAppError(where, "api.user.login.busy.app_error", http.StatusServiceUnavailable,
		"The server is too busy to check passwords right now. Please try again shortly.")
}

// passwordSlot waits, with ctx, for one of 2×NumCPU password slots. The
// caller must call release when done.
func (a *App) passwordSlot(ctx context.Context, where string) (release func(), _ *model.AppError) {
	a.pw.slotsOnce.Do(func() { a.pw.slots = make(chan struct{}, 2*runtime.NumCPU()) })
	select {
	case a.pw.slots <- struct{}{}:
		return func() { <-a.pw.slots }, nil
	default:
	}
	ctx, cancel := context.WithTimeout(ctx, passwordWaitMax)
	defer cancel()
	select {
	case a.pw.slots <- struct{}{}:
		return func() { <-a.pw.slots }, nil
	case <-ctx.Done():
		return nil, errPasswordBusy(where).Wrap(ctx.Err())
	}
}

func (a *App) bcryptCost() int {
	if a.bcrypt == 0 {
		return bcrypt.DefaultCost
	}
	return a.bcrypt
}

// dummyHash is checked against when a login names no account (or one
// without a password), so the reply takes as long as for a real one. It
// uses the App's cost, and is made on first need rather than at start.
func (a *App) dummyHash() string {
	a.pw.dummyOnce.Do(func() {
		h, err := bcrypt.GenerateFromPassword([]byte("garrison-timing-equaliser"), a.bcryptCost())
		if err != nil {
			// Only an out-of-range cost fails, and hashPassword would
			// fail the same way; an empty dummy still answers "wrong".
			a.log.Error("bcrypt: dummy hash", "err", err)
		}
		a.pw.dummy = string(h)
	})
	return a.pw.dummy
}

// bcryptMaxLen is the longest password bcrypt hashes without truncation.
const bcryptMaxLen = 72

// hashPassword hashes pw at the App's cost, within a password slot.
func (a *App) hashPassword(ctx context.Context, where, pw string) (string, *model.AppError) {
	release, appErr := a.passwordSlot(ctx, where)
	if appErr != nil {
		return "", appErr
	}
	defer release()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), a.bcryptCost())
	if err != nil {
		return "", internalErr(where, err)
	}
	return string(h), nil
}

// checkPassword reports whether pw matches hash, within a password slot.
// An empty hash (no such account, or no password) is checked against the
// dummy hash, so it costs the same, and never matches.
func (a *App) checkPassword(ctx context.Context, where, hash, pw string) (bool, *model.AppError) {
	release, appErr := a.passwordSlot(ctx, where)
	if appErr != nil {
		return false, appErr
	}
	defer release()
	if hash == "" {
		_ = bcrypt.CompareHashAndPassword([]byte(a.dummyHash()), []byte(pw))
		return false, nil
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil, nil
}

// validatePassword applies PasswordSettings.
func (a *App) validatePassword(where, pw string) *model.AppError {
	r := a.set.Password
	var need []string
	if r.Lowercase && !strings.ContainsFunc(pw, unicode.IsLower) {
		need = append(need, "a lowercase letter")
	}
	if r.Uppercase && !strings.ContainsFunc(pw, unicode.IsUpper) {
		need = append(need, "an uppercase letter")
	}
	if r.Number && !strings.ContainsFunc(pw, unicode.IsDigit) {
		need = append(need, "a number")
	}
	if r.Symbol && !strings.ContainsFunc(pw, func(c rune) bool { return unicode.IsPunct(c) || unicode.IsSymbol(c) }) {
		need = append(need, "a symbol")
	}
	n := len([]rune(pw))
	if n < r.MinimumLength || len(pw) > bcryptMaxLen || len(need) > 0 {
		msg := "Your password must contain at least " + itoa(r.MinimumLength) + " characters"
		if len(need) > 0 {
			msg += " including " + strings.Join(need, ", ")
		}
		msg += ", and at most " + itoa(bcryptMaxLen) + " bytes."
		return model.NewAppError(where, "model.user.is_valid.pwd.app_error", http.StatusBadRequest, msg)
	}
	return nil
}
