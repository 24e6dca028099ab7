// Renders a summary.json with k6-html-reporter, the way its users do: node render.js IN OUTDIR
const { generateSummaryReport } = require("k6-html-reporter");
generateSummaryReport({ jsonFile: process.argv[2], output: process.argv[3] });
