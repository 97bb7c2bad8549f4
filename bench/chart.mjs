// A dependency-free SVG line chart: commits/s (y, linear from 0) against
// concurrent writers (x, log2), one line per contender.
const WIDTH = 800;
const HEIGHT = 420;
const PAD = { left: 80, right: 250, top: 40, bottom: 50 };
const COLORS = ['#d62728', '#1f77b4', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#17becf'];

const esc = (s) => String(s).replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);

function niceMax(value) {
  const step = 10 ** Math.floor(Math.log10(value || 1));
  return Math.ceil(value / step) * step;
}

/** The chart as an SVG document; `points` are `{ series, writers, perSecond }`. */
export function renderChart(points, title) {
  const names = [...new Set(points.map((p) => p.series))];
  const xs = [...new Set(points.map((p) => p.writers))].sort((a, b) => a - b);
  const yMax = niceMax(Math.max(...points.map((p) => p.perSecond)));
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const lx = (w) => Math.log2(w);
  const [x0, x1] = [lx(xs[0]), lx(xs[xs.length - 1])];
  const sx = (w) => PAD.left + (x1 === x0 ? plotW / 2 : ((lx(w) - x0) / (x1 - x0)) * plotW);
  const sy = (v) => PAD.top + plotH - (v / yMax) * plotH;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="13">${esc(title)}</text>`,
  ];
  for (let i = 0; i <= 5; i++) {
    const v = (yMax / 5) * i;
    out.push(`<line x1="${PAD.left}" x2="${PAD.left + plotW}" y1="${sy(v)}" y2="${sy(v)}" stroke="#ddd"/>`);
    out.push(
      `<text x="${PAD.left - 6}" y="${sy(v) + 4}" text-anchor="end">${Math.round(v).toLocaleString('en-US')}</text>`,
    );
  }
  for (const w of xs) {
    out.push(`<line x1="${sx(w)}" x2="${sx(w)}" y1="${PAD.top}" y2="${PAD.top + plotH}" stroke="#eee"/>`);
    out.push(`<text x="${sx(w)}" y="${PAD.top + plotH + 18}" text-anchor="middle">${w}</text>`);
  }
  out.push(
    `<text x="${PAD.left + plotW / 2}" y="${HEIGHT - 10}" text-anchor="middle">concurrent writers in one process</text>`,
  );
  out.push(
    `<text transform="translate(16 ${PAD.top + plotH / 2}) rotate(-90)" text-anchor="middle">commits/s (median)</text>`,
  );
  names.forEach((name, i) => {
    const color = COLORS[i % COLORS.length];
    const mine = points.filter((p) => p.series === name).sort((a, b) => a.writers - b.writers);
    const path = mine
      .map((p, j) => `${j === 0 ? 'M' : 'L'}${sx(p.writers).toFixed(1)},${sy(p.perSecond).toFixed(1)}`)
      .join(' ');
    if (mine.length > 1) out.push(`<path d="${path}" fill="none" stroke="${color}" stroke-width="2"/>`);
    for (const p of mine)
      out.push(`<circle cx="${sx(p.writers).toFixed(1)}" cy="${sy(p.perSecond).toFixed(1)}" r="3.5" fill="${color}"/>`);
    const ly = PAD.top + 10 + i * 20;
    out.push(`<rect x="${WIDTH - PAD.right + 16}" y="${ly - 8}" width="14" height="4" fill="${color}"/>`);
    out.push(`<text x="${WIDTH - PAD.right + 36}" y="${ly}">${esc(name)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
