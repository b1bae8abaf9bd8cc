package app

import (
	"net/http"
	"strings"
	"unicode"

	"golang.org/x/crypto/bcrypt"

	"github.com/garrison-chat/garrison/server/internal/model"
)

// dummyHash is checked against when a login names no account, so the
// reply takes as long as for a real one.
var dummyHash = func() string {
	h, _ := bcrypt.GenerateFromPassword([]byte("garrison-timing-equaliser"), bcrypt.DefaultCost)
	return string(h)
}()

// bcryptMaxLen is the longest password bcrypt hashes without truncation.
const bcryptMaxLen = 72

func (a *App) hashPassword(pw string) (string, error) {
	cost := a.bcrypt
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	return string(h), err
}

func checkPassword(hash, pw string) bool {
	if hash == "" {
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil
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
