/** @type {import('tailwindcss').Config} */
module.exports = {
  content: ["./views/**/*.templ", "./views/**/*.go", "./static/app.js"],
  theme: {
    extend: {},
  },
  plugins: [],
};
