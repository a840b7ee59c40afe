/** @type {import('tailwindcss').Config} */
const colors = require("tailwindcss/colors");
const plugin = require("tailwindcss/plugin");

// The dark scheme follows the system (prefers-color-scheme). Rather than a dark: variant on
// every class of every page, the light shades the pages are drawn with (white and pale
// surfaces, dark text, pale borders) are CSS variables: a surface, a text colour or a border
// each turns into its dark counterpart, so every page (and every row app.js draws) is dark
// in the same way. Saturated fills (teal buttons, avatars, badges) and white text on them
// stay as they are in both schemes.
//
// Each entry: utility -> "colour-shade" (or "white") -> the shade it becomes in the dark.
const dark = {
  bg: {
    white: "slate-900",
    "slate-50": "slate-950",
    "slate-100": "slate-800",
    "slate-200": "slate-700",
    "slate-300": "slate-600",
    "teal-50": "teal-950",
    "rose-50": "rose-950",
    "rose-100": "rose-900",
    "amber-50": "amber-950",
    "amber-100": "amber-900",
  },
  text: {
    "slate-900": "slate-50",
    "slate-800": "slate-100",
    "slate-700": "slate-200",
    "slate-600": "slate-300",
    "slate-500": "slate-400",
    "slate-300": "slate-600",
    "teal-700": "teal-300",
    "teal-800": "teal-200",
    "rose-600": "rose-400",
    "rose-700": "rose-300",
    "amber-700": "amber-300",
    "amber-800": "amber-200",
    "amber-900": "amber-100",
  },
  border: {
    "slate-100": "slate-800",
    "slate-200": "slate-700",
    "slate-300": "slate-600",
    "teal-300": "teal-700",
    "rose-200": "rose-800",
    "rose-300": "rose-700",
    "amber-200": "amber-800",
  },
  ring: {
    white: "slate-900",
    "rose-200": "rose-800",
  },
};

function hex(name) {
  if (name === "white") return colors.white;
  const [c, shade] = name.split("-");
  return colors[c][shade];
}

function triplet(h) {
  if (h.length === 4) h = "#" + [...h.slice(1)].map((c) => c + c).join("");
  const n = parseInt(h.slice(1), 16);
  return `${(n >> 16) & 255} ${(n >> 8) & 255} ${n & 255}`;
}

// theme: the utility's colours with the flipping ones as variables; vars: light and dark.
const themes = {};
const light = {};
const night = {};
for (const [utility, flips] of Object.entries(dark)) {
  const theme = {};
  for (const [name, to] of Object.entries(flips)) {
    const v = `--${utility}-${name}`;
    light[v] = triplet(hex(name));
    night[v] = triplet(hex(to));
    const value = `rgb(var(${v}) / <alpha-value>)`;
    if (name === "white") {
      theme.white = value;
    } else {
      const [c, shade] = name.split("-");
      theme[c] = { ...(theme[c] || {}), [shade]: value };
    }
  }
  themes[utility] = theme;
}

module.exports = {
  content: ["./views/**/*.templ", "./views/**/*.go", "./static/app.js"],
  darkMode: "media",
  theme: {
    extend: {
      backgroundColor: themes.bg,
      textColor: themes.text,
      borderColor: themes.border,
      divideColor: themes.border,
      ringColor: themes.ring,
      ringOffsetColor: themes.ring,
    },
  },
  plugins: [
    plugin(function ({ addBase }) {
      addBase({
        ":root": { ...light, "--focus": triplet(colors.teal[600]) },
        "@media (prefers-color-scheme: dark)": {
          ":root": { ...night, "--focus": triplet(colors.teal[400]) },
        },
      });
    }),
  ],
};
