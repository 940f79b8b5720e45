"""Draws the training curve (training and validation loss against minutes) as a
small self-contained SVG for docs/demo-model.md; no plotting library needed."""
import csv
import sys

W, H, PAD_L, PAD_B, PAD_T, PAD_R = 640, 320, 56, 40, 16, 16


def main(log_csv, out_svg):
    rows = list(csv.DictReader(open(log_csv)))
    train = [(float(r["elapsed_s"]) / 60, float(r["train_loss"])) for r in rows]
    val = [(float(r["elapsed_s"]) / 60, float(r["val_loss"])) for r in rows if r["val_loss"]]
    x_max = max(x for x, _ in train)
    y_lo, y_hi = 2.5, 8.5

    def px(x, y):
        y = min(max(y, y_lo), y_hi)
        return (PAD_L + x / x_max * (W - PAD_L - PAD_R), PAD_T + (y_hi - y) / (y_hi - y_lo) * (H - PAD_T - PAD_B))

    def line(points, colour, width):
        path = " ".join(f"{px(x, y)[0]:.1f},{px(x, y)[1]:.1f}" for x, y in points)
        return f'<polyline fill="none" stroke="{colour}" stroke-width="{width}" points="{path}"/>'

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>']
    for y in range(3, 9):
        _, py = px(0, y)
        out.append(f'<line x1="{PAD_L}" y1="{py:.1f}" x2="{W - PAD_R}" y2="{py:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{PAD_L - 6}" y="{py + 4:.1f}" text-anchor="end">{y}</text>')
    step = 10 if x_max > 30 else 5
    for m in range(0, int(x_max) + 1, step):
        pxm, _ = px(m, y_lo)
        out.append(f'<text x="{pxm:.1f}" y="{H - PAD_B + 16}" text-anchor="middle">{m}</text>')
    out.append(f'<text x="{(W + PAD_L) / 2}" y="{H - 6}" text-anchor="middle">minutes of training (2-core CPU)</text>')
    out.append(f'<text x="14" y="{H / 2}" transform="rotate(-90 14 {H / 2})" text-anchor="middle">loss (nats/token)</text>')
    out.append(line(train, "#9bb7d4", 1.5))
    out.append(line(val, "#d1495b", 2.5))
    out.append(f'<text x="{W - PAD_R - 4}" y="{PAD_T + 14}" text-anchor="end" fill="#5a7fa6">training loss (batch mean)</text>')
    out.append(f'<text x="{W - PAD_R - 4}" y="{PAD_T + 30}" text-anchor="end" fill="#d1495b">validation loss (1/8 of the split)</text>')
    out.append("</svg>")
    open(out_svg, "w").write("\n".join(out) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
