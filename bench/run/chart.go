package main

import (
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// chart draws series as lines with points into an SVG file at path. It
// reports false (and writes nothing) when there is nothing to draw.
func chart(path, title, xLabel, yLabel string, series []Series) (bool, error) {
	if len(series) == 0 {
		return false, nil
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true
	var args []any
	var maxX, maxY float64
	for _, s := range series {
		for _, pt := range s.Points {
			maxX, maxY = max(maxX, pt.X), max(maxY, pt.Y)
		}
	}
	// Room right of the last point and above the highest for the legend.
	p.X.Min, p.X.Max = 0, maxX*1.05
	p.Y.Max = maxY * (1.15 + 0.07*float64(len(series)))
	for _, s := range series {
		xys := make(plotter.XYs, len(s.Points))
		for i, pt := range s.Points {
			xys[i].X, xys[i].Y = pt.X, pt.Y
		}
		args = append(args, s.Name, xys)
	}
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return false, err
	}
	if err := p.Save(8*vg.Inch, 5*vg.Inch, path); err != nil {
		return false, err
	}
	return true, nil
}
