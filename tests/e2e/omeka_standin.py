r"""A stand-in Omeka S release for tests, and HTTP helpers to check a deployed Omeka S.

Why a stand-in: the real release zip (github.com/omeka/omeka-s/releases) cannot be downloaded
in CI, which reaches only PyPI, npm and Debian. So tests serve this small PHP application,
packaged like the release, to the deployment. It mirrors exactly the part of Omeka S's
contract that Castelet's installer (`puppet/modules/castelet/files/omeka-install.py`) and the
end-to-end tests rely on, after Omeka S v4.1.1 (file and class names below are the real
source's); everything else (items, sites, themes, modules, API) is absent.

Layout (release zip built by `gulp zip`, `.dist` files copied to their runtime names):
  `omeka-s/` top directory, `index.php` (front controller), `.htaccess` (from `.htaccess.dist`:
  existing files are served, everything else goes to index.php, `.ini` files are denied),
  `config/database.ini` (empty `user`/`password`/`dbname`/`host`, filled in by Puppet),
  `config/local.config.php`, `files/index.html`, `logs/application.log`. The application
  code lives in `application/standin.php` (the real release has `application/` and `vendor/`).

Behaviour mirrored:
* Database: `config/database.ini` keys `user`, `password`, `dbname`, `host`, `port`,
  `unix_socket` (Omeka\Service\ConnectionFactory, Doctrine DBAL pdo_mysql), utf8mb4.
* Installed state (Omeka\Service\ModuleManagerFactory): installed iff `SELECT * FROM module`
  succeeds. While not installed, every request is redirected (302) to /install
  (Omeka\Mvc\MvcListeners::redirectToInstallation) and no session is started
  (MvcListeners::bootstrapSession).
* Routes (application/config/routes.config.php): `top` `/`, `install` `/install(/.*)?`,
  `login` `/login(/.*)?`, `logout` `/logout(/.*)?`, `admin` `/admin` and its children.
* /install (Omeka\Controller\InstallController::indexAction, Omeka\Form\InstallationForm,
  view omeka/install/index.phtml): once installed, 302 to `/admin`. GET runs the pre-tasks
  (Installation\Task\CheckEnvironmentTask: PHP >= 7.4, extensions fileinfo mbstring PDO
  pdo_mysql xml, database connection, MariaDB >= 10.2.6; CheckDirPermissionsTask: `files/`
  writable) and lists failures in `<ul class="pre-errors">`, else shows the form. The form has
  NO CSRF element (InstallationForm removes `installationform_csrf`); its fields are
  `user[email]`, `user[email-confirm]` (must match), `user[name]`,
  `user[password-confirm][password]` and `user[password-confirm][password-confirm]`
  (Omeka\Form\Element\PasswordConfirm: must match, config `password.min_length` 6),
  `settings[installation_title]`, `settings[time_zone]` (one of
  DateTimeZone::listIdentifiers()), `settings[locale]` (empty or `en_US`: LocaleSelectFactory
  offers en_US plus the .mo files of application/language, none here), `submit`. Invalid input:
  HTTP 200, form again, `<ul class="messages"><li class="error">Label: message</li>`
  (Messenger::addFormErrors). Valid input runs the installer (Omeka\Installation\Installer):
  pre-tasks again, then the schema (InstallSchemaTask; here the tables `module`, `session`,
  `setting`, `user` with the real columns), the first user (CreateFirstUserTask: role
  `global_admin`, active, `password_hash()`; UserAdapter::validateEntity checks the e-mail with
  Laminas EmailAddress, whose hostname check rejects unknown TLDs: approximated here by the
  special-use TLDs), then the settings (AddDefaultSettingsTask: `version`,
  `administrator_email`, `installation_title`, `time_zone`, `locale`, ... JSON encoded, as
  Omeka\Settings\Settings stores them). Like the real installer it stops at the first failing
  task without rolling back: a failed first user leaves an "installed" database without an
  administrator. Success: 302 to `/login`; failure: 200 with "There were errors during
  installation." and the task's errors.
* Sessions (MvcListeners::bootstrapSession, Omeka\Session\SaveHandler\Db): cookie named
  md5(OMEKA_PATH), httponly, strict mode, data in the `session` table.
* /login (Omeka\Controller\LoginController::loginAction, Omeka\Form\LoginForm, view
  omeka/login/login.phtml): form `loginform` with `email`, `password`, the CSRF element
  `loginform_csrf` (Omeka\Form\Initializer\Csrf: `<form name>_csrf`, a Laminas Csrf element:
  hidden input whose value `<hash>-<token id>` is checked against the session) and `submit`;
  a logged-in user is redirected to `/admin`. A valid POST regenerates the session id and
  authenticates (active user, `password_verify`); success redirects (302) to the session's
  `redirect_url` if any, else `/admin`; failure shows "Email or password is invalid", a
  missing or wrong token "CSRF: Invalid or missing CSRF token" (HTTP 200 both).
* /admin (MvcListeners::redirectToLogin): without an identity, the request URL is stored as
  `redirect_url` in the session and the answer is 302 to `/login`. With one, the dashboard
  (view/layout/layout-admin.phtml + omeka/admin/index/browse.phtml): `<div class="logo">` with
  the installation title, `<p class="logout"><a href="/logout">Logout</a></p>`,
  `<h1><span class="title">Admin dashboard</span></h1>`.
* /logout: clears the identity, destroys the session, 302 to `/login`.
* `/` (Omeka\Controller\IndexController, omeka/index/index.phtml in view/layout/layout.phtml):
  the installation title in `<h1>`, "Go to the Admin dashboard to start working with <title>.",
  footer "Powered by Omeka S".

Not from Omeka: each page carries the comment `<!-- Omeka S (castelet test archive VERSION) -->`
so tests can tell releases apart.

The helpers `fetch`, `login` and `install_form_offered` work against the real Omeka S as well as
against this stand-in. They use only the standard library and the HTTP client, HTML parser and
login check of Castelet's installer script, loaded as the module `omeka_install`, so tests and
installer read Omeka's pages the same way.
"""

from __future__ import annotations

import importlib.util
import io
import ssl
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

__all__ = ["LoginError", "Response", "fetch", "install_form_offered", "login", "standin_archive"]

_INDEX_PHP = r"""<?php
// Omeka S stand-in (Castelet tests): front controller, as the release's index.php.
define('OMEKA_PATH', __DIR__);
chdir(OMEKA_PATH);
date_default_timezone_set('UTC');

if (PHP_SAPI === 'cli-server') {
    // `php -S` has no .htaccess: serve existing files except PHP and .ini files ourselves.
    $path = (string) parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
    if (preg_match('/\.ini$/i', $path)) {
        http_response_code(403);
        return true;
    }
    if ($path !== '/' && is_file(OMEKA_PATH . $path) && !preg_match('/\.php$/i', $path)) {
        return false;
    }
}

require OMEKA_PATH . '/application/standin.php';
castelet_standin_run();
"""

_HTACCESS = r"""# Omeka S stand-in (Castelet tests): the rules of the release's .htaccess that matter here.
SetEnv APPLICATION_ENV "production"

RewriteEngine On

# Existing files are served as they are.
RewriteCond %{REQUEST_FILENAME} -f
RewriteRule .* - [L]

# Everything else goes to the front controller.
RewriteRule ^ index.php [L]

# No .ini file (config/database.ini) is ever served.
<FilesMatch "\.ini$">
    Require all denied
</FilesMatch>
"""

_DATABASE_INI = """user     = ""
password = ""
dbname   = ""
host     = ""
;port     =
;unix_socket =
"""

_LOCAL_CONFIG = """<?php
// Omeka S stand-in (Castelet tests): local configuration, as the release's (defaults).
return [
    'logger' => [
        'log' => false,
    ],
];
"""

_FILES_INDEX = "<!DOCTYPE html><title>Forbidden</title>\n"

_APPLICATION = r"""<?php
// Omeka S stand-in (Castelet tests). See tests/e2e/omeka_standin.py for what it mirrors.

const STANDIN_VERSION = '@VERSION@';
const PASSWORD_MIN_LENGTH = 6;
const PHP_MINIMUM_VERSION = '7.4.0';
const MARIADB_MINIMUM_VERSION = '10.2.6';
const MYSQL_MINIMUM_VERSION = '5.7.9';
const REQUIRED_EXTENSIONS = ['fileinfo', 'mbstring', 'PDO', 'pdo_mysql', 'xml'];
// Laminas\Validator\Hostname only accepts IANA's TLDs; these special-use ones are not among them.
const UNKNOWN_TLDS = ['test', 'example', 'invalid', 'localhost', 'local', 'internal', 'lan', 'home', 'corp'];

$GLOBALS['standin_messages'] = [];
$GLOBALS['standin_pdo'] = null;

function esc($value)
{
    return htmlspecialchars((string) $value, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8');
}

function db()
{
    if ($GLOBALS['standin_pdo'] instanceof PDO) {
        return $GLOBALS['standin_pdo'];
    }
    $ini = @parse_ini_file(OMEKA_PATH . '/config/database.ini');
    if ($ini === false) {
        throw new RuntimeException('The database configuration file config/database.ini cannot be read.');
    }
    $dsn = 'mysql:dbname=' . ($ini['dbname'] ?? '') . ';charset=utf8mb4';
    if (!empty($ini['unix_socket'])) {
        $dsn .= ';unix_socket=' . $ini['unix_socket'];
    } else {
        $dsn .= ';host=' . (($ini['host'] ?? '') !== '' ? $ini['host'] : 'localhost');
        if (!empty($ini['port'])) {
            $dsn .= ';port=' . $ini['port'];
        }
    }
    $GLOBALS['standin_pdo'] = new PDO($dsn, $ini['user'] ?? '', $ini['password'] ?? '', [
        PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
        PDO::ATTR_DEFAULT_FETCH_MODE => PDO::FETCH_ASSOC,
    ]);
    return $GLOBALS['standin_pdo'];
}

// Omeka\Service\ModuleManagerFactory: installed iff the module table can be read.
function is_installed()
{
    try {
        db()->query('SELECT * FROM module')->fetchAll();
        return true;
    } catch (Throwable $e) {
        return false;
    }
}

function setting($id, $default = null)
{
    $stmt = db()->prepare('SELECT value FROM setting WHERE id = ?');
    $stmt->execute([$id]);
    $value = $stmt->fetchColumn();
    return $value === false ? $default : json_decode($value, true);
}

function redirect($url)
{
    http_response_code(302);
    header('Location: ' . $url);
    exit;
}

function add_message($type, $message)
{
    if (session_status() === PHP_SESSION_ACTIVE) {
        $_SESSION['messages'][$type][] = $message;
    } else {
        $GLOBALS['standin_messages'][$type][] = $message;
    }
}

function render_messages()
{
    $all = $GLOBALS['standin_messages'];
    if (session_status() === PHP_SESSION_ACTIVE && !empty($_SESSION['messages'])) {
        $all = array_merge_recursive($_SESSION['messages'], $all);
        unset($_SESSION['messages']);
    }
    $GLOBALS['standin_messages'] = [];
    if (!$all) {
        return '';
    }
    $out = '<ul class="messages">';
    foreach ($all as $type => $messages) {
        foreach ($messages as $message) {
            $out .= sprintf('<li class="%s">%s</li>', esc($type), esc($message));
        }
    }
    return $out . '</ul>';
}

// --- sessions: Omeka\Session\SaveHandler\Db ---------------------------------------------
class StandinDbSessionHandler implements SessionHandlerInterface
{
    public function open(string $path, string $name): bool
    {
        return true;
    }

    public function close(): bool
    {
        return true;
    }

    public function read(string $id): string|false
    {
        $stmt = db()->prepare('SELECT data, modified FROM session WHERE id = ?');
        $stmt->execute([$id]);
        $row = $stmt->fetch();
        if ($row && ($row['modified'] + (int) ini_get('session.gc_maxlifetime')) > time()) {
            return $row['data'];
        }
        return '';
    }

    public function write(string $id, string $data): bool
    {
        db()->prepare(
            'INSERT INTO session (id, modified, data) VALUES (?, ?, ?) '
            . 'ON DUPLICATE KEY UPDATE modified = VALUES(modified), data = VALUES(data)'
        )->execute([$id, time(), $data]);
        return true;
    }

    public function destroy(string $id): bool
    {
        db()->prepare('DELETE FROM session WHERE id = ?')->execute([$id]);
        return true;
    }

    public function gc(int $max_lifetime): int|false
    {
        $stmt = db()->prepare('DELETE FROM session WHERE modified < ?');
        $stmt->execute([time() - $max_lifetime]);
        return $stmt->rowCount();
    }
}

function start_session()
{
    ini_set('session.use_strict_mode', '1');
    ini_set('session.use_only_cookies', '1');
    ini_set('session.cookie_httponly', '1');
    ini_set('session.gc_maxlifetime', '1209600');
    session_name(md5(OMEKA_PATH));
    session_set_save_handler(new StandinDbSessionHandler(), true);
    session_start();
}

function identity()
{
    if (empty($_SESSION['identity'])) {
        return null;
    }
    $stmt = db()->prepare('SELECT * FROM user WHERE id = ? AND is_active = 1');
    $stmt->execute([$_SESSION['identity']]);
    return $stmt->fetch() ?: null;
}

function request_url()
{
    $host = $_SERVER['HTTP_HOST'] ?? ($_SERVER['SERVER_NAME'] ?? 'localhost');
    $scheme = (!empty($_SERVER['HTTPS']) && $_SERVER['HTTPS'] !== 'off') ? 'https' : 'http';
    return $scheme . '://' . $host . $_SERVER['REQUEST_URI'];
}

// --- Laminas Csrf element (Omeka\Form\Initializer\Csrf) ---------------------------------
function csrf_value($name)
{
    $tokenId = bin2hex(random_bytes(16));
    $hash = md5(random_bytes(32));
    $_SESSION['csrf'][$name][$tokenId] = $hash;
    return $hash . '-' . $tokenId;
}

function csrf_valid($name, $value)
{
    if (!is_string($value) || !preg_match('/^([0-9a-f]{32})-([0-9a-f]{32})$/', $value, $m)) {
        return false;
    }
    return isset($_SESSION['csrf'][$name][$m[2]]) && hash_equals($_SESSION['csrf'][$name][$m[2]], $m[1]);
}

// --- layouts -----------------------------------------------------------------------------
function marker()
{
    return '<!-- Omeka S (castelet test archive ' . esc(STANDIN_VERSION) . ') -->';
}

function layout($headTitle, $bodyClass, $content)
{
    echo "<!DOCTYPE html>\n<html lang=\"en-US\">\n<head>\n<meta charset=\"utf-8\">\n"
        . '<title>' . esc($headTitle) . "</title>\n" . marker() . "\n</head>\n"
        . '<body class="' . esc($bodyClass) . " minimal\">\n"
        . '<div id="content" role="main">' . render_messages() . $content . "</div>\n"
        . "<footer><span class=\"powered-by\">Powered by Omeka S</span></footer>\n</body>\n</html>\n";
}

function admin_layout($title, $user, $content)
{
    echo "<!DOCTYPE html>\n<html lang=\"en-US\">\n<head>\n<meta charset=\"utf-8\">\n"
        . '<title>Admin dashboard · ' . esc($title) . "</title>\n" . marker() . "\n</head>\n"
        . "<body class=\"browse\">\n<div class=\"flex\">\n<header>\n"
        . '<div class="logo"><a href="/admin">' . esc($title) . "</a></div>\n"
        . "<div id=\"user\">\n"
        . '<p class="user-id"><a class="user-show o-icon-user button" href="/admin/user/' . (int) $user['id'] . '">'
        . esc($user['name']) . "</a></p>\n"
        . "<p class=\"logout\"><a href=\"/logout\">Logout</a></p>\n</div>\n</header>\n"
        . '<div id="content" role="main">' . render_messages() . $content . "</div>\n</div>\n"
        . '<footer><p class="site-version"><a href="https://omeka.org/s">Omeka S</a> '
        . '<span class="version-number">version ' . esc(STANDIN_VERSION) . "</span></p></footer>\n"
        . "</body>\n</html>\n";
}

// --- installer: Omeka\Installation\Installer and its tasks --------------------------------
function pre_install_errors()
{
    $errors = [];
    if (!version_compare(PHP_VERSION, PHP_MINIMUM_VERSION, '>=')) {
        $errors[] = sprintf('The installed PHP version (%s) is too low. Omeka requires at least version %s.',
            PHP_VERSION, PHP_MINIMUM_VERSION);
    }
    foreach (REQUIRED_EXTENSIONS as $extension) {
        if (!extension_loaded($extension)) {
            $errors[] = sprintf('Omeka requires the PHP extension %s, but it is not loaded.', $extension);
        }
    }
    try {
        $version = (string) db()->query('SELECT VERSION()')->fetchColumn();
        $isMariadb = strpos($version, 'MariaDB') !== false;
        $minimum = $isMariadb ? MARIADB_MINIMUM_VERSION : MYSQL_MINIMUM_VERSION;
        if (!version_compare($version, $minimum, '>=')) {
            $errors[] = sprintf('The installed %s version (%s) is too low. Omeka requires at least version %s.',
                $isMariadb ? 'MariaDB' : 'MySQL', $version, $minimum);
        }
    } catch (Throwable $e) {
        $errors[] = $e->getMessage();
    }
    $files = OMEKA_PATH . '/files';
    if (!is_dir($files) || !is_writable($files)) {
        $errors[] = sprintf('"%s" is not a writable directory.', $files);
    }
    return $errors;
}

function install_schema()
{
    $tables = [
        'module' => 'id VARCHAR(190) NOT NULL, is_active TINYINT(1) NOT NULL, version VARCHAR(255) NOT NULL, '
            . 'PRIMARY KEY(id)',
        'session' => 'id VARCHAR(190) NOT NULL, data LONGBLOB NOT NULL, modified INT NOT NULL, PRIMARY KEY(id)',
        'setting' => 'id VARCHAR(190) NOT NULL, value LONGTEXT NOT NULL, PRIMARY KEY(id)',
        'user' => 'id INT AUTO_INCREMENT NOT NULL, email VARCHAR(190) NOT NULL, name VARCHAR(190) NOT NULL, '
            . 'created DATETIME NOT NULL, modified DATETIME DEFAULT NULL, password_hash VARCHAR(60) DEFAULT NULL, '
            . 'role VARCHAR(190) NOT NULL, is_active TINYINT(1) NOT NULL, PRIMARY KEY(id), UNIQUE KEY (email)',
    ];
    foreach ($tables as $name => $columns) {
        db()->exec(sprintf('CREATE TABLE `%s` (%s) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci '
            . 'ENGINE = InnoDB', $name, $columns));
    }
}

function email_errors($email)
{
    if (filter_var($email, FILTER_VALIDATE_EMAIL) === false) {
        return [sprintf("'%s' is not a valid email address in the basic format local-part@hostname", $email)];
    }
    $hostname = strtolower(substr(strrchr($email, '@'), 1));
    $tld = substr(strrchr('.' . $hostname, '.'), 1);
    if (!str_contains($hostname, '.') || in_array($tld, UNKNOWN_TLDS, true) || !preg_match('/^[a-z]{2,63}$/', $tld)) {
        return [
            sprintf("'%s' is not a valid hostname for the email address", $hostname),
            'The input appears to be a DNS hostname but cannot match TLD against known list',
        ];
    }
    return [];
}

function create_first_user($vars)
{
    $errors = [];
    if (trim($vars['name']) === '') {
        $errors[] = 'The name cannot be empty.';
    }
    $errors = array_merge($errors, email_errors($vars['email']));
    if (!$errors) {
        $stmt = db()->prepare('SELECT COUNT(*) FROM user WHERE email = ?');
        $stmt->execute([$vars['email']]);
        if ($stmt->fetchColumn() > 0) {
            $errors[] = sprintf('The email %s is already taken.', $vars['email']);
        }
    }
    if ($errors) {
        return $errors;
    }
    db()->prepare('INSERT INTO user (email, name, created, password_hash, role, is_active) '
        . "VALUES (?, ?, UTC_TIMESTAMP(), ?, 'global_admin', 1)")
        ->execute([$vars['email'], $vars['name'], password_hash($vars['password'], PASSWORD_DEFAULT)]);
    return [];
}

function add_default_settings($vars)
{
    $settings = [
        'version' => STANDIN_VERSION,
        'pagination_per_page' => 25,
        'version_notifications' => '1',
        'use_htmlpurifier' => '1',
        'administrator_email' => $vars['administrator_email'],
        'installation_title' => $vars['installation_title'],
        'time_zone' => $vars['time_zone'],
        'locale' => $vars['locale'],
    ];
    $stmt = db()->prepare('INSERT INTO setting (id, value) VALUES (?, ?) '
        . 'ON DUPLICATE KEY UPDATE value = VALUES(value)');
    foreach ($settings as $id => $value) {
        $stmt->execute([$id, json_encode($value)]);
    }
}

// Omeka\Installation\Installer::install: pre-tasks again, then each task; stop at the first error.
function run_installer($user, $settings)
{
    $errors = pre_install_errors();
    if ($errors) {
        return $errors;
    }
    try {
        install_schema();
    } catch (Throwable $e) {
        return [$e->getMessage()];
    }
    $errors = create_first_user([
        'email' => $user['email'],
        'name' => $user['name'],
        'password' => $user['password-confirm']['password'],
    ]);
    if ($errors) {
        return $errors;
    }
    add_default_settings([
        'administrator_email' => $user['email'],
        'installation_title' => $settings['installation_title'],
        'time_zone' => $settings['time_zone'],
        'locale' => $settings['locale'],
    ]);
    return [];
}

// Omeka\Form\InstallationForm: input filter and validators; messages as Messenger::addFormErrors.
function installation_form_errors($post)
{
    $user = is_array($post['user'] ?? null) ? $post['user'] : [];
    $settings = is_array($post['settings'] ?? null) ? $post['settings'] : [];
    $passwords = is_array($user['password-confirm'] ?? null) ? $user['password-confirm'] : [];
    $required = "Value is required and can't be empty";
    $errors = [];
    $email = (string) ($user['email'] ?? '');
    if ($email === '') {
        $errors[] = "Email: $required";
    } elseif (filter_var($email, FILTER_VALIDATE_EMAIL) === false) {
        $errors[] = 'Email: The input is not a valid email address';
    }
    $confirm = (string) ($user['email-confirm'] ?? '');
    if ($confirm === '') {
        $errors[] = "Confirm email: $required";
    } elseif ($confirm !== $email) {
        $errors[] = 'Confirm email: The emails did not match';
    }
    if (trim((string) ($user['name'] ?? '')) === '') {
        $errors[] = "Display name: $required";
    }
    $password = (string) ($passwords['password'] ?? '');
    if ($password === '') {
        $errors[] = "Password: $required";
    } elseif (strlen($password) < PASSWORD_MIN_LENGTH) {
        $errors[] = 'Password: The password is invalid';
    }
    $passwordConfirm = (string) ($passwords['password-confirm'] ?? '');
    if ($passwordConfirm === '') {
        $errors[] = "Confirm password: $required";
    } elseif ($passwordConfirm !== $password) {
        $errors[] = 'Confirm password: The passwords did not match';
    }
    if (trim((string) ($settings['installation_title'] ?? '')) === '') {
        $errors[] = "Installation title: $required";
    }
    $timeZone = (string) ($settings['time_zone'] ?? '');
    if ($timeZone === '') {
        $errors[] = "Time zone: $required";
    } elseif (!in_array($timeZone, DateTimeZone::listIdentifiers(), true)) {
        $errors[] = 'Time zone: The input was not found in the haystack';
    }
    if (!in_array((string) ($settings['locale'] ?? ''), ['', 'en_US'], true)) {
        $errors[] = 'Locale: The input was not found in the haystack';
    }
    return $errors;
}

function installation_form($post)
{
    $user = is_array($post['user'] ?? null) ? $post['user'] : [];
    $settings = is_array($post['settings'] ?? null) ? $post['settings'] : [];
    $timeZone = (string) ($settings['time_zone'] ?? (ini_get('date.timezone') ?: 'UTC'));
    $locale = (string) ($settings['locale'] ?? '');
    $row = function ($label, $input) {
        return '<div class="field"><div class="field-meta"><label>' . esc($label) . '</label></div>'
            . '<div class="inputs">' . $input . "</div></div>\n";
    };
    $zones = '';
    foreach (DateTimeZone::listIdentifiers() as $zone) {
        $zones .= '<option value="' . esc($zone) . '"' . ($zone === $timeZone ? ' selected="selected"' : '') . '>'
            . esc($zone) . '</option>';
    }
    $locales = '<option value="">Default</option><option value="en_US"'
        . ($locale === 'en_US' ? ' selected="selected"' : '') . '>en_US</option>';
    return '<form method="post" name="installationform" id="installationform" action="/install">' . "\n"
        . "<fieldset><legend>Create the first user</legend>\n"
        . $row('Email', '<input type="email" name="user[email]" id="email" required="required" value="'
            . esc($user['email'] ?? '') . '">')
        . $row('Confirm email', '<input type="email" name="user[email-confirm]" id="email-confirm" '
            . 'required="required" value="' . esc($user['email-confirm'] ?? '') . '">')
        . $row('Display name', '<input type="text" name="user[name]" id="name" required="required" value="'
            . esc($user['name'] ?? '') . '">')
        . $row('Password', '<input type="password" name="user[password-confirm][password]" id="password" '
            . 'required="required" value="">')
        . $row('Confirm password', '<input type="password" name="user[password-confirm][password-confirm]" '
            . 'id="password-confirm" required="required" value="">')
        . "</fieldset>\n<fieldset><legend>Settings</legend>\n"
        . $row('Installation title', '<input type="text" name="settings[installation_title]" '
            . 'id="installation-title" required="required" value="' . esc($settings['installation_title'] ?? '')
            . '">')
        . $row('Time zone', '<select name="settings[time_zone]" id="time-zone" required="required">' . $zones
            . '</select>')
        . $row('Locale', '<select name="settings[locale]" id="locale">' . $locales . '</select>')
        . "</fieldset>\n"
        . '<div class="field"><input type="submit" name="submit" value="Submit"></div>' . "\n</form>\n";
}

function install_action()
{
    if (is_installed()) {
        redirect('/admin');
    }
    $post = [];
    $preErrors = null;
    if ($_SERVER['REQUEST_METHOD'] === 'POST') {
        $post = $_POST;
        $formErrors = installation_form_errors($post);
        if ($formErrors) {
            foreach ($formErrors as $error) {
                add_message('error', $error);
            }
        } else {
            $errors = run_installer($post['user'], $post['settings']);
            if (!$errors) {
                redirect('/login');
            }
            add_message('error', 'There were errors during installation.');
            foreach ($errors as $error) {
                add_message('error', $error);
            }
        }
    } else {
        $preErrors = pre_install_errors() ?: null;
    }
    $content = '<h1>Install Omeka S</h1>' . "\n";
    if ($preErrors) {
        $content .= "<p>Some installation requirements were not satisfied.</p>\n<ul class=\"pre-errors\">";
        foreach ($preErrors as $error) {
            $content .= '<li>' . esc($error) . '</li>';
        }
        $content .= "</ul>\n";
    } else {
        $content .= installation_form($post);
    }
    layout('Omeka S', 'install', $content);
}

// --- login, logout, admin, front page --------------------------------------------------------
function login_action()
{
    if (identity()) {
        redirect('/admin');
    }
    if ($_SERVER['REQUEST_METHOD'] === 'POST') {
        $errors = [];
        foreach (['email' => 'Email', 'password' => 'Password'] as $name => $label) {
            if ((string) ($_POST[$name] ?? '') === '') {
                $errors[] = "$label: Value is required and can't be empty";
            }
        }
        if (!csrf_valid('loginform_csrf', $_POST['loginform_csrf'] ?? null)) {
            $errors[] = 'CSRF: Invalid or missing CSRF token';
        }
        if ($errors) {
            foreach ($errors as $error) {
                add_message('error', $error);
            }
        } else {
            session_regenerate_id(true);
            $stmt = db()->prepare('SELECT * FROM user WHERE email = ? AND is_active = 1');
            $stmt->execute([(string) $_POST['email']]);
            $user = $stmt->fetch();
            $password = (string) $_POST['password'];
            if ($user && $user['password_hash'] !== null && password_verify($password, $user['password_hash'])) {
                $_SESSION['identity'] = (int) $user['id'];
                add_message('success', 'Successfully logged in');
                redirect(!empty($_SESSION['redirect_url']) ? $_SESSION['redirect_url'] : '/admin');
            }
            add_message('error', 'Email or password is invalid');
        }
    }
    $content = "<h1>Log in</h1>\n"
        . '<form method="POST" name="loginform" class="disable-unsaved-warning" id="loginform">' . "\n"
        . '<div class="field"><div class="field-meta"><label for="email">Email</label></div><div class="inputs">'
        . '<input type="email" name="email" required="required" id="email" value="'
        . esc($_POST['email'] ?? '') . "\"></div></div>\n"
        . '<div class="field"><div class="field-meta"><label for="password">Password</label></div>'
        . '<div class="inputs"><input type="password" name="password" required="required" id="password" value="">'
        . "</div></div>\n"
        . '<input type="hidden" name="loginform_csrf" value="' . esc(csrf_value('loginform_csrf')) . "\">\n"
        . '<input type="submit" name="submit" value="Log in">' . "\n</form>\n"
        . '<p class="forgot-password"><a href="/forgot-password">Forgot password?</a></p>' . "\n";
    layout(setting('installation_title', 'Omeka S'), 'login', $content);
}

function logout_action()
{
    unset($_SESSION['identity']);
    session_destroy();
    redirect('/login');
}

function admin_action()
{
    $user = identity();
    if (!$user) {
        $_SESSION['redirect_url'] = request_url();
        redirect('/login');
    }
    $title = setting('installation_title', 'Omeka S');
    $content = "<h1><span class=\"title\">Admin dashboard</span></h1>\n<div id=\"dashboard\">\n"
        . '<p>Welcome to the ' . esc($title) . " admin dashboard!</p>\n</div>\n";
    admin_layout($title, $user, $content);
}

function front_action()
{
    $title = setting('installation_title', 'Omeka S');
    $content = '<h1><a href="/">' . esc($title) . "</a></h1>\n"
        . '<p>Go to the <a href="/admin">Admin dashboard</a> to start working with ' . esc($title) . ".</p>\n";
    layout('Sites · ' . $title, 'site browse front', $content);
}

function not_found()
{
    http_response_code(404);
    layout('Omeka S', 'error', "<h1>Page not found</h1>\n<p>The requested URL could not be matched by routing.</p>\n");
}

function castelet_standin_run()
{
    $path = (string) parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
    $isInstall = (bool) preg_match('#^/install(/.*)?$#', $path);
    if (!is_installed()) {
        if (!$isInstall) {
            redirect('/install');
        }
    } elseif (PHP_SAPI !== 'cli') {
        start_session();
    }
    if ($isInstall) {
        install_action();
    } elseif ($path === '/') {
        front_action();
    } elseif (preg_match('#^/login(/.*)?$#', $path)) {
        login_action();
    } elseif (preg_match('#^/logout(/.*)?$#', $path)) {
        logout_action();
    } elseif (preg_match('#^/admin(/.*)?$#', $path)) {
        admin_action();
    } else {
        not_found();
    }
}
"""


def standin_archive(version: str) -> bytes:
    """A zip laid out as the Omeka S release (top directory `omeka-s/`) holding the stand-in.

    Deterministic for a given version (fixed timestamps and modes), so its SHA-256 is stable.
    """
    members = {
        "omeka-s/index.php": _INDEX_PHP,
        "omeka-s/.htaccess": _HTACCESS,
        "omeka-s/application/standin.php": _APPLICATION.replace("@VERSION@", version.replace("'", "")),
        "omeka-s/config/database.ini": _DATABASE_INI,
        "omeka-s/config/local.config.php": _LOCAL_CONFIG,
        "omeka-s/files/index.html": _FILES_INDEX,
        "omeka-s/logs/application.log": "",
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o100644 << 16  # regular file, rw-r--r--, as release archives carry
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------
# HTTP helpers: for the stand-in and the real Omeka S alike, built on the installer's own
# --------------------------------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALLER_SCRIPT = REPO_ROOT / "puppet" / "modules" / "castelet" / "files" / "omeka-install.py"


def _load_installer() -> ModuleType:
    """Castelet's Omeka S installer script as the module `omeka_install` (its main() is guarded).

    Registered in sys.modules before running it, as dataclasses need to find their module.
    """
    loaded = sys.modules.get("omeka_install")
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location("omeka_install", INSTALLER_SCRIPT)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the Omeka S installer script {INSTALLER_SCRIPT}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["omeka_install"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["omeka_install"]
        raise
    return module


_installer = _load_installer()
# Seconds per request (the installer allows minutes for its POST /install): these helpers only check.
_installer.TIMEOUT = 60


class LoginError(Exception):
    """Logging in to Omeka S did not reach the admin dashboard."""


@dataclass
class Response(_installer.Page):
    """One HTTP answer (the installer's Page: status, location, body) and the URL that gave it."""

    url: str = ""


def fetch(base_url: str, host: str, path: str, follow: bool = False, context: ssl.SSLContext | None = None) -> Response:
    """GET `path` with the Host header `host`; redirects are followed only if asked.

    E.g. `fetch(url, host, "/install")` on an installed Omeka S: status 302, location "/admin".
    """
    client = _installer.Client(base_url, host, context)  # fixed Host, cookie jar, no redirects
    where, page = client.follow(path) if follow else (path, client.request(path))
    return Response(page.status, page.location, page.body, client.url(where))


def install_form_offered(html: str) -> bool:
    """Whether the page offers Omeka S's installation form (InstallationForm's fields).

    True for the page of GET /install on a fresh Omeka S; False for an installed one (its
    /install redirects to /admin, whose body is empty, or the login page if followed).
    """
    names = {"user[email]", "user[password-confirm][password]", "settings[installation_title]"}
    return any(names & set(form.fields) for form in _installer.parse(html).forms)


def login(base_url: str, host: str, email: str, password: str, context: ssl.SSLContext | None = None) -> str:
    """Log in through Omeka S's login form like a browser; returns the admin dashboard's HTML.

    The installer's check_login: GET /login (session cookie + the `loginform_csrf` token), POST
    `email`, `password`, the token and `submit`, follow the redirect to /admin; then GET /admin
    in that session. `base_url` is where to connect (e.g. `http://10.166.0.12`), `host` the
    Host header (the vhost's ServerName). Raises LoginError, with Omeka's messages, unless the
    admin dashboard (with its Logout link) answers HTTP 200.
    """
    client = _installer.Client(base_url, host, context)  # fixed Host, cookie jar, no redirects
    try:
        _installer.check_login(client, email, password)
    except _installer.InstallError as exc:
        raise LoginError(str(exc)) from exc
    where, admin = client.follow("/admin")
    if admin.status != 200 or not where.startswith("/admin") or 'href="/logout"' not in admin.body:
        raise LoginError(f"after login, {where} answered HTTP {admin.status} without the admin dashboard")
    return admin.body
