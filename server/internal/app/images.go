package app

import (
	"bytes"
	"fmt"
	"image"
	_ "image/gif" // decoders for image.Decode
	"image/jpeg"
	"image/png"

	"golang.org/x/image/draw"
	_ "golang.org/x/image/webp" // WebP decoding, which the standard library lacks
)

// Image renditions, as Mattermost makes them (app/file.go).
const (
	thumbnailWidth  = 120
	thumbnailHeight = 100
	previewWidth    = 1920
	miniPreviewSize = 16
	// defaultMaxImageResolution is FileSettings.MaxImageResolution's
	// default (7680×4320): larger images are refused before decoding, so
	// a small file claiming huge dimensions cannot exhaust memory.
	defaultMaxImageResolution = 33177600
	jpegQuality               = 90
)

// imageExtTypes maps the extensions Garrison decodes to the type the
// content must sniff as (http.DetectContentType): a file whose extension
// promises an image must hold that image.
var imageExtTypes = map[string]string{
	"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp",
}

// renditions are what an uploaded image yields besides itself.
type renditions struct {
	thumb, preview []byte
	// ext and contentType are those of thumb and preview: PNG for images
	// with transparency, JPEG otherwise.
	ext, contentType string
	// mini is a tiny JPEG clients blur while the thumbnail loads.
	mini []byte
}

// makeRenditions encodes the thumbnail (within 120×100), the preview (at
// most 1920 wide) and the mini preview (16×16) of img.
func makeRenditions(img image.Image) (*renditions, error) {
	r := &renditions{ext: "jpg", contentType: "image/jpeg"}
	alpha := !isOpaque(img)
	if alpha {
		r.ext, r.contentType = "png", "image/png"
	}
	preview := img
	if b := img.Bounds(); b.Dx() > previewWidth {
		preview = scale(img, previewWidth, max(1, b.Dy()*previewWidth/b.Dx()))
	}
	pb := preview.Bounds()
	tw, th := fitWithin(pb.Dx(), pb.Dy(), thumbnailWidth, thumbnailHeight)
	thumb := scale(preview, tw, th)
	var err error
	if r.preview, err = encodeImage(preview, alpha); err != nil {
		return nil, fmt.Errorf("preview: %w", err)
	}
	if r.thumb, err = encodeImage(thumb, alpha); err != nil {
		return nil, fmt.Errorf("thumbnail: %w", err)
	}
	if r.mini, err = encodeImage(scale(thumb, miniPreviewSize, miniPreviewSize), false); err != nil {
		return nil, fmt.Errorf("mini preview: %w", err)
	}
	return r, nil
}

// fitWithin scales w×h down (never up) to fit in maxW×maxH, keeping the
// aspect ratio.
func fitWithin(w, h, maxW, maxH int) (int, int) {
	if w <= maxW && h <= maxH {
		return max(w, 1), max(h, 1)
	}
	if w*maxH > h*maxW { // wider than the box
		return maxW, max(1, h*maxW/w)
	}
	return max(1, w*maxH/h), maxH
}

// scale resamples img to w×h.
func scale(img image.Image, w, h int) image.Image {
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(dst, dst.Bounds(), img, img.Bounds(), draw.Src, nil)
	return dst
}

func isOpaque(img image.Image) bool {
	if o, ok := img.(interface{ Opaque() bool }); ok {
		return o.Opaque()
	}
	return false
}

// encodeImage writes img as PNG (keeping transparency) or as JPEG on a
// white background.
func encodeImage(img image.Image, alpha bool) ([]byte, error) {
	var buf bytes.Buffer
	if alpha {
		if err := png.Encode(&buf, img); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
	if !isOpaque(img) {
		flat := image.NewRGBA(img.Bounds())
		draw.Draw(flat, flat.Bounds(), image.White, image.Point{}, draw.Src)
		draw.Draw(flat, flat.Bounds(), img, img.Bounds().Min, draw.Over)
		img = flat
	}
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: jpegQuality}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
