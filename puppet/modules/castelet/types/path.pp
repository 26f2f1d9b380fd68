# @summary An absolute path Castelet may safely put in a shell command or a config file:
#   letters, digits, `_`, `.`, `-` and `/`, no trailing slash.
type Castelet::Path = Pattern[/\A\/[A-Za-z0-9_.\/-]*[A-Za-z0-9_.-]\z/]
