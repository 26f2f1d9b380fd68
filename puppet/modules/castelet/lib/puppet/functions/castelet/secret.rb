# frozen_string_literal: true

require 'fileutils'
require 'securerandom'

# @summary
#   Returns a secret generated on this node and kept in a root-only file.
#
# The secret `NAME` lives in `<secrets dir>/NAME` (see `castelet::secrets_dir`; by default
# `/var/lib/castelet/secrets`). The first call creates it: 40 random letters and digits,
# the directory mode 0700 and the file mode 0600, both owned by the compiling user (root).
# Later calls read the same file, so the value is stable across Puppet runs.
#
# Puppet runs masterless here: the catalog is compiled on the node itself, which is what
# lets this function create the file at compile time. The value never passes through
# hiera, Terraform or the deployment repository. Note that compiling also generates the
# secret under `--noop`.
#
# An existing file that is empty or shorter than 32 characters is an error, not silently
# replaced: a database already uses the value.
Puppet::Functions.create_function(:'castelet::secret') do
  # @param name
  #   The secret's file name: letters, digits, `_`, `.` and `-`, starting with a letter or digit.
  # @return [Sensitive[String]] The secret, wrapped so that Puppet redacts it in logs and reports.
  # @example Password of a database user
  #   $password = castelet::secret('mariadb-omeka')
  dispatch :secret do
    param 'Pattern[/\A[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\z/]', :name
    return_type 'Sensitive[String]'
  end

  # Length of a new secret and the shortest existing secret accepted.
  def new_length
    40
  end

  def min_length
    32
  end

  def secret(name)
    dir = call_function('castelet::secrets_dir')
    ensure_on_volume(dir)
    ensure_dir(dir)
    path = File.join(dir, name)
    value = read_secret(path) || create_secret(dir, path)
    Puppet::Pops::Types::PSensitiveType::Sensitive.new(value)
  end

  private

  # A node with a data volume keeps its secrets there (castelet-volumes binds the directory
  # before Puppet runs): refuse to create or read them on the root disk, where a rebuilt
  # instance would not find them. Tests that move the directory (CASTELET_SECRETS_DIR) are exempt.
  def ensure_on_volume(dir)
    return unless ENV['CASTELET_SECRETS_DIR'].to_s.empty?
    data_dir = call_function('lookup', 'castelet::data_dir', { 'default_value' => nil })
    return if data_dir.nil? || data_dir.to_s.empty?
    return if mountpoints.include?(File.expand_path(dir))
    raise Puppet::ParseError,
          "castelet::secret: #{dir} is not bound from the data volume (#{data_dir}/castelet/secrets): " \
          'run castelet-volumes mount (castelet-puppet-apply does it first) and see its error'
  end

  def mountpoints
    File.readlines('/proc/self/mountinfo').map do |line|
      line.split(' ')[4].gsub(/\\([0-7]{3})/) { Regexp.last_match(1).to_i(8).chr }
    end
  rescue Errno::ENOENT
    []
  end

  # Parents get the usual 0755 (e.g. /var/lib/castelet, also used for the bootstrap's
  # status); only the secrets directory itself is 0700.
  def ensure_dir(dir)
    FileUtils.mkdir_p(File.dirname(dir))
    begin
      Dir.mkdir(dir, 0o700)
    rescue Errno::EEXIST
      nil
    end
    st = File.lstat(dir)
    raise Puppet::ParseError, "castelet::secret: #{dir} is not a directory" unless st.directory?
    File.chmod(0o700, dir) unless (st.mode & 0o777) == 0o700
  end

  def read_secret(path)
    return nil unless File.exist?(path)
    raise Puppet::ParseError, "castelet::secret: #{path} is not a regular file" unless File.file?(path)
    File.chmod(0o600, path) unless (File.stat(path).mode & 0o777) == 0o600
    value = File.read(path).strip
    if value.length < min_length
      raise Puppet::ParseError,
            "castelet::secret: #{path} holds fewer than #{min_length} characters; " \
            'fix or remove it by hand (anything already using the old value must be updated too)'
    end
    value
  end

  # Write the new value to a private temporary file, then hard-link it into place: the
  # link either creates the final name atomically or fails because another run won the
  # race, in which case that run's value is used.
  def create_secret(dir, path)
    alphabet = [*'a'..'z', *'A'..'Z', *'0'..'9']
    value = Array.new(new_length) { alphabet[SecureRandom.random_number(alphabet.length)] }.join
    tmp = File.join(dir, ".#{File.basename(path)}.#{Process.pid}.#{SecureRandom.hex(4)}")
    File.open(tmp, File::WRONLY | File::CREAT | File::EXCL, 0o600) do |f|
      f.write("#{value}\n")
      f.flush
      f.fsync
    end
    begin
      File.link(tmp, path)
    rescue Errno::EEXIST
      return read_secret(path)
    ensure
      File.unlink(tmp)
    end
    value
  end
end
