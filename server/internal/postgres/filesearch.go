package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/garrison-chat/garrison/server/internal/model"
)

// FileSearch is a search of the names of files attached to posts.
type FileSearch struct {
	SearchFilter
	// Extensions, if any, restrict to files with one of them;
	// ExcludedExtensions to files with none. Lower-case, without the dot.
	Extensions, ExcludedExtensions []string
}

// fileNamePunct are the arguments of translate() that turn the
// punctuation of a file name into spaces: the text search parser reads
// "q3_report-final.pdf" as one file path and "report.pdf" as a host name,
// which no word of a search would match.
const fileNamePunct = `'.,-_@:', '      '`

// fileNameTSV is the text search vector of a file's name. Migration
// 00008 indexes this expression: the two must stay the same, or the
// index is not used.
const fileNameTSV = `to_tsvector('simple'::regconfig, translate(f.name, ` + fileNamePunct + `))`

// fileNameTSQuery is the text search query of a term of a file search.
// A word with punctuation ("report.pdf", "q3_report") must match its
// parts next to each other and in order, as it would match the one token
// the name was before its punctuation became spaces.
func fileNameTSQuery(t SearchTerm, p string) string {
	if t.Kind == TermPrefix { // already letters and digits only
		return tsquerySQL(t, p)
	}
	return `phraseto_tsquery('simple', translate(` + p + `, ` + fileNamePunct + `))`
}

var fileSource = searchSource{channel: "f.channel_id", user: "f.creator_id", createAt: "f.create_at",
	vector: fileNameTSV, tsquery: fileNameTSQuery}

// SearchFilesSQL returns the query of s and its arguments. Only files
// attached to a live post are found: an upload never attached is its
// uploader's alone, and a deleted post takes its files with it.
func SearchFilesSQL(s FileSearch) (string, []any) {
	var args sqlArgs
	arg := args.add
	where := append([]string{`f.post_id <> ''`, liveFile}, s.conds(fileSource, arg)...)
	if len(s.Extensions) > 0 {
		where = append(where, `f.extension = ANY(`+arg(s.Extensions)+`::text[])`)
	}
	if len(s.ExcludedExtensions) > 0 {
		where = append(where, `f.extension <> ALL(`+arg(s.ExcludedExtensions)+`::text[])`)
	}
	q := `SELECT ` + fileColumns + ` FROM file_infos f WHERE ` + strings.Join(where, ` AND `) +
		` ORDER BY f.create_at DESC, f.id DESC LIMIT ` + arg(s.Limit) + ` OFFSET ` + arg(s.Offset)
	return q, args
}

// SearchFiles returns a page of the files matching s, newest first.
func (s *Store) SearchFiles(ctx context.Context, fs FileSearch) ([]*model.FileInfo, error) {
	if len(fs.ChannelIDs) == 0 || fs.Limit <= 0 {
		return nil, nil
	}
	sql, args := SearchFilesSQL(fs)
	// Planned with the actual values, as post search is: how common a
	// word is decides between the name index and the newest files.
	rows, err := s.pool.Query(ctx, sql, append([]any{pgx.QueryExecModeExec}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("files: search: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*model.FileInfo, error) { return scanFileInfo(r) })
	if err != nil {
		return nil, fmt.Errorf("files: search: %w", mapErr(err))
	}
	return out, nil
}
