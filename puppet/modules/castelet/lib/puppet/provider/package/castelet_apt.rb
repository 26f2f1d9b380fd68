# Puppet's apt provider, installing in one `apt-get install` the packages that are already free
# to be installed when one of them is.
#
# A first run installs a role's packages one `apt-get` at a time: each call loads apt's cache
# and resolves dependencies again (about 1 s of CPU), runs debconf's preconfiguration and dpkg's
# triggers, and Puppet then asks `apt-mark` about it. When Puppet installs package X, this
# provider adds every other package P of the catalog that
#   * is absent, managed by this provider, and asks for nothing but `ensure => installed`
#     (no version, source, install options, response file or hold), like X;
#   * has no prerequisite that X does not have: every resource P depends on, directly or not
#     (containment whits aside), is also one X depends on, so it has already been applied,
#     successfully (X would have been skipped otherwise); X itself is not one of them.
# Nothing is installed before something it was ordered after, and never after a failure it
# depends on. Each P still gets its turn: Puppet finds it absent, calls `install`, which does
# nothing more, and reports the change as usual, so what subscribes to P is refreshed in order.
# If the common `apt-get` fails, X is installed alone as the apt provider does, and the others
# are left to their own turn, alone too.
require 'set'

Puppet::Type.type(:package).provide(:castelet_apt, parent: :apt, source: :dpkg) do
  desc "Puppet's apt provider, installing in one apt-get call every package whose
    prerequisites are all applied (Castelet's Package default, set in manifests/site.pp)."

  has_feature :versionable, :install_options, :virtual_packages

  # Names installed ahead of their turn in this run, waiting for it.
  def self.installed_ahead
    @installed_ahead ||= {}
  end

  # Names that were in a failed common call: each is tried again alone, at its own turn.
  def self.failed_together
    @failed_together ||= Set.new
  end

  def query
    # Absent until its turn, so that Puppet reports (and propagates) the installation then.
    return nil if self.class.installed_ahead.key?(@resource[:name])

    super
  end

  def install
    if self.class.installed_ahead.delete(@resource[:name])
      @installed_by_apt_get = true
      return
    end
    return super unless plain?(@resource) && !self.class.failed_together.include?(@resource[:name])

    others = installable_with_this
    return super if others.empty?

    names = [@resource[:name]] + others.map { |other| other[:name] }
    notice("apt-get install of #{names.length} packages at once: #{names.join(' ')}")
    begin
      aptget('-q', '-y', '-o', 'DPkg::Options::=--force-confold', :install, *names)
    rescue Puppet::ExecutionFailure => e
      warning("installing #{names.length} packages at once failed, installing #{@resource[:name]} alone: #{e.message}")
      self.class.failed_together.merge(names)
      return super
    end
    others.each { |other| self.class.installed_ahead[other[:name]] = true }
    @installed_by_apt_get = true
  end

  # `apt-get install NAME` already marked what it installed as manually installed.
  def flush
    return if @installed_by_apt_get

    super
  end

  private

  # Only `ensure => installed` (or present), the package's own name, the defaults otherwise.
  def plain?(resource)
    %i[present installed].include?(resource[:ensure]) &&
      resource[:source].nil? && resource[:install_options].nil? &&
      resource[:responsefile].nil? && resource[:mark] != :hold &&
      [nil, :keep].include?(resource[:configfiles]) &&
      resource[:name] =~ %r{\A[a-z0-9][a-z0-9+.-]+\z}
  end

  def installable_with_this
    graph = @resource.catalog.relationship_graph
    before_this = prerequisites(graph, @resource)
    @resource.catalog.resources.select do |other|
      other.is_a?(Puppet::Type.type(:package)) && !other.equal?(@resource) &&
        other.provider.is_a?(self.class) && plain?(other) &&
        !self.class.installed_ahead.key?(other[:name]) && !self.class.failed_together.include?(other[:name]) &&
        other.provider.get(:ensure) == :absent &&
        (prerequisites(graph, other) - before_this).empty? &&
        other.provider.absent_now?
    end
  end

  # What must be applied before the resource, containment whits left out.
  def prerequisites(graph, resource)
    graph.dependencies(resource).reject { |dependency| dependency.is_a?(Puppet::Type.type(:whit)) }.to_set
  end

  protected

  # Absent right now (dpkg's database); the answer is not kept for the package's own turn.
  def absent_now?
    found = query
    found.nil? || %i[absent purged].include?(found[:ensure])
  end
end
