package app

import (
	"bytes"
	"image"
	"image/color"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFitWithin(t *testing.T) {
	t.Parallel()
	tests := []struct{ w, h, wantW, wantH int }{
		{50, 50, 50, 50},     // small images are not enlarged
		{1200, 100, 120, 10}, // wide
		{100, 1000, 10, 100}, // tall
		{240, 200, 120, 100}, // same ratio as the box
		{5000, 1, 120, 1},    // never zero
	}
	for _, tc := range tests {
		w, h := fitWithin(tc.w, tc.h, thumbnailWidth, thumbnailHeight)
		require.Equal(t, [2]int{tc.wantW, tc.wantH}, [2]int{w, h}, "%dx%d", tc.w, tc.h)
	}
}

func TestMakeRenditions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		w, h        int
		alpha       bool
		ext         string
		previewW    int
		thumbW      int
		thumbH      int
		previewType string
	}{
		{"opaque wide", 2400, 600, false, "jpg", 1920, 120, 30, "jpeg"},
		{"transparent small", 60, 40, true, "png", 60, 60, 40, "png"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			img := image.NewNRGBA(image.Rect(0, 0, tc.w, tc.h))
			for y := range tc.h {
				for x := range tc.w {
					a := uint8(255)
					if tc.alpha && x%2 == 0 {
						a = 10
					}
					img.SetNRGBA(x, y, color.NRGBA{uint8(x), uint8(y), 7, a})
				}
			}
			r, err := makeRenditions(img)
			require.NoError(t, err)
			require.Equal(t, tc.ext, r.ext)
			cfg, format, err := image.DecodeConfig(bytes.NewReader(r.preview))
			require.NoError(t, err)
			require.Equal(t, tc.previewType, format)
			require.Equal(t, tc.previewW, cfg.Width)
			cfg, _, err = image.DecodeConfig(bytes.NewReader(r.thumb))
			require.NoError(t, err)
			require.Equal(t, [2]int{tc.thumbW, tc.thumbH}, [2]int{cfg.Width, cfg.Height})
			cfg, format, err = image.DecodeConfig(bytes.NewReader(r.mini))
			require.NoError(t, err)
			require.Equal(t, "jpeg", format)
			require.Equal(t, [2]int{miniPreviewSize, miniPreviewSize}, [2]int{cfg.Width, cfg.Height})
		})
	}
}
