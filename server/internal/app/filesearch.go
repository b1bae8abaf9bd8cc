package app

import (
	"context"
	"strings"

	"github.com/garrison-chat/garrison/server/internal/model"
	"github.com/garrison-chat/garrison/server/internal/postgres"
)

// SearchFiles runs a file search for the caller (Mattermost's
// SearchFilesInTeamForUser): the names of the files attached to live
// posts in the channels the caller is a member of, newest first. The
// terms and flags are post search's, plus ext:; a #hashtag is a word of
// a name, since names have no hashtags.
func (a *App) SearchFiles(ctx context.Context, s *model.Session, o SearchOptions) (*model.FileInfoList, *model.AppError) {
	const where = "app.search_files"
	q, appErr := a.startSearch(ctx, s, o, where)
	if appErr != nil {
		return nil, appErr
	}
	res := model.NewFileInfoList()
	if q.empty(true) || o.PerPage == 0 {
		return res, nil
	}
	f, ok, err := a.resolveSearch(ctx, s, o, q)
	if err != nil {
		return nil, internalErr(where, err)
	}
	if !ok {
		return res, nil
	}
	f.Terms = append(f.Terms[:len(f.Terms):len(f.Terms)], hashtagWords(q.Hashtags)...)
	f.ExcludedTerms = append(f.ExcludedTerms[:len(f.ExcludedTerms):len(f.ExcludedTerms)], hashtagWords(q.ExcludedHashtags)...)
	f.Offset, f.Limit = o.Page*o.PerPage, o.PerPage
	files, err := fromSearchReplica(ctx, a, s.UserID, func(st *postgres.Store) ([]*model.FileInfo, error) {
		return st.SearchFiles(ctx, postgres.FileSearch{SearchFilter: f,
			Extensions: q.Extensions, ExcludedExtensions: q.ExcludedExtensions})
	})
	if err != nil {
		return nil, internalErr(where, err)
	}
	for _, fi := range files {
		res.Order = append(res.Order, fi.ID)
		res.FileInfos[fi.ID] = fi
	}
	return res, nil
}

// hashtagWords turns hashtags into the words they are.
func hashtagWords(tags []string) []postgres.SearchTerm {
	out := make([]postgres.SearchTerm, 0, len(tags))
	for _, t := range tags {
		out = append(out, postgres.SearchTerm{Kind: postgres.TermWord, Text: strings.TrimPrefix(t, "#")})
	}
	return out
}
