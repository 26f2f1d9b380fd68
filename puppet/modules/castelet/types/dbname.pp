# @summary A MariaDB database (and user) name Castelet creates: lower case, digits and `_`.
type Castelet::Dbname = Pattern[/\A[a-z][a-z0-9_]{0,31}\z/]
