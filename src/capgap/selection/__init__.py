"""Choosing a teacher before paying for every fine-tune: cheap predictors from the student's view of each
teacher's rationales (`predictors`, `predict`), and successive halving over short pilot fine-tunes (`halving`,
`select`), checked on simulated grids (`simulate`)."""
